"""Media a user attaches to a conversation: images for vision models (documents come next)."""
