"""Sections → chunks within a token budget, sentence-aware for Chinese and English."""

from __future__ import annotations

from dataclasses import dataclass

from llama_index.core.node_parser import SentenceSplitter

from zhiku.ingest.parsers import Section
from zhiku.retrieval.text import TOKEN

# Sentence ends in both scripts; Chinese text has no spaces to split on.
_SENTENCE = r"[^。！？；!?;.\n]+[。！？；!?;.\n]*"


@dataclass
class TextChunk:
    """A chunk of a section, with its character span inside that section."""

    text: str
    page: int | None
    heading: str | None
    start: int
    end: int


class Chunker:
    """Splits each section separately, so a chunk never spans two pages or headings."""

    def __init__(self, chunk_tokens: int = 220, overlap: int = 40):
        self._splitter = SentenceSplitter(
            chunk_size=chunk_tokens,
            chunk_overlap=overlap,
            tokenizer=TOKEN.findall,
            paragraph_separator="\n\n",
            secondary_chunking_regex=_SENTENCE,
        )

    def split(self, sections: list[Section]) -> list[TextChunk]:
        """Chunks of every section in document order."""
        chunks: list[TextChunk] = []
        for section in sections:
            previous = -1
            for piece in self._splitter.split_text(section.text):
                piece = piece.strip()
                if not piece:
                    continue
                # chunks advance through the section; overlap means the next one may start
                # before the previous one ends, but never before it starts
                start = section.text.find(piece, previous + 1)
                if start < 0:
                    start = max(section.text.find(piece), 0)
                previous = start
                chunks.append(TextChunk(piece, section.page, section.heading, start, start + len(piece)))
        return chunks
