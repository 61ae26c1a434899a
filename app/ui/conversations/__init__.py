"""The conversation sidebar and the link between the chat and the conversation store."""
