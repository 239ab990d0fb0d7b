"""Answer feedback (👍/👎 + an optional comment) from the API, the chat UI and the widget."""

from assistant.feedback.schemas import FeedbackIn, FeedbackRecord
from assistant.feedback.store import FeedbackStore, parse_since

__all__ = ["FeedbackIn", "FeedbackRecord", "FeedbackStore", "parse_since"]
