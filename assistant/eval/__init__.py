"""Quality evaluation on the dev set (`assistant eval`).

`evaluate` is the harness: it loads the questions, measures retrieval and answers, and
writes the report and threshold checks; `baseline` builds the LangChain-defaults retriever
it compares the system against.
"""
