"""What a run leaves for people and machines: the console, the typed run record, the run
history and reports (Markdown, HTML, JUnit)."""
