"""The operator dashboard page: its template, script and style sheet (package data)."""
