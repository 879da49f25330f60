"""Background transcription jobs: state in the state table (`job#<id>`), run by a self-invocation."""
