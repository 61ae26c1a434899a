"""The chat pane: message model, message view, composer."""
