"""Text data: IMDB and your own tables, cleaning and tokenisation, vocabularies, word vectors,
the built-in synthetic corpus, padded batches, class balancing."""
from .balance import oversample, rebalance, undersample
from .batching import Batch, EncodedDataset, batches, encode_dataset, num_batches
from .dataset import TextDataset
from .errors import CorruptDataError, DataFormatError, DataNotFoundError, DataWarning, DownloadError
from .imdb import OFFICIAL_SHA256, OFFICIAL_URL, download_imdb, find_imdb, load_imdb, load_imdb_unlabelled
from .stopwords import ENGLISH_STOP_WORDS
from .synthetic import make_corpus, make_negation_probe, make_reviews
from .tabular import load_table
from .text import Tokenizer
from .vectors import (Coverage, build_ppmi_svd, embedding_matrix, load_glove, nearest_neighbours, save_glove,
                      vocabulary_coverage)
from .vocab import TextEncodingError, Vocabulary, VocabularyError

__all__ = ["Coverage", "build_ppmi_svd", "embedding_matrix", "load_glove", "nearest_neighbours", "save_glove",
           "vocabulary_coverage", "Batch", "CorruptDataError", "DataFormatError", "DataNotFoundError", "DataWarning", "DownloadError",
           "ENGLISH_STOP_WORDS", "EncodedDataset", "OFFICIAL_SHA256", "OFFICIAL_URL", "TextDataset",
           "TextEncodingError", "Tokenizer", "Vocabulary", "VocabularyError", "batches", "download_imdb",
           "encode_dataset", "find_imdb", "load_imdb", "load_imdb_unlabelled", "load_table", "make_corpus",
           "make_negation_probe", "make_reviews", "num_batches", "oversample", "rebalance", "undersample"]
