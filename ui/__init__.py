"""Streamlit pages and panels; they call services only, never Qdrant or Ollama."""
