"""Technology Transfer Assistant: cited answers over documents about China's
international technology transfer centers, in English and Chinese.

Stages, one module each: `corpus` (load and clean) → `chunking` → `embedding` → `index`
(with `store`) → `retrieve` (with `keyword`) → `answer` (with `citations`, `prompts`,
`llm`). `service.Assistant` ties them together for `api`, `ui` and `cli`.
"""

__version__ = "0.1.0"
