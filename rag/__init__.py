"""Knowledge base and retrieval.

loaders → chunking → embedding + sparse → index (EdgeIndex) ← retrieval (hybrid + rerank);
catalog + ingest keep files, chunks and vectors in step; evaluation measures it on BEIR sets.
"""
