"""Qt helpers every UI feature uses: background tasks, the theme, Markdown to HTML."""
