"""Ingestion: files → validated → parsed → chunks → embeddings → the index, with the catalogue recording each step."""
