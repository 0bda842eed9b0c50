"""Retrieval: owns the index schema; hybrid search, reranking, answers and citations. Imports only zhiku.core."""
