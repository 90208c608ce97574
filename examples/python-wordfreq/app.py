"""Text statistics: word count, the most frequent words, sentences and reading time.

    {"text": "The cat sat. The cat ran!", "top": 2}
    -> {"words": 6, "unique": 4, "sentences": 2, "reading_seconds": 2,
        "top": [["cat", 2], ["sat", 1]]}
"""

import math
import re
from collections import Counter

WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
WORDS_PER_MINUTE = 230
# Left out of the top words unless asked for with "stopwords": false.
STOPWORDS = frozenset("a an and are as at be but by for if in is it of on or the to was".split())


def main(args: dict) -> dict:
    text = args.get("text")
    if not isinstance(text, str):
        raise TypeError("args.text must be a string")
    top = int(args.get("top", 10))
    words = [w.lower() for w in WORD.findall(text)]
    counted = Counter(w for w in words if not args.get("stopwords", True) or w not in STOPWORDS)
    sentences = len(SENTENCE_END.findall(text)) or (1 if words else 0)
    print(f"{len(words)} words, {len(counted)} distinct")
    return {
        "words": len(words),
        "unique": len(set(words)),
        "sentences": sentences,
        "reading_seconds": math.ceil(len(words) * 60 / WORDS_PER_MINUTE),
        "top": [[word, count] for word, count in counted.most_common(top)],
    }
