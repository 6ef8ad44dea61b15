"""The refusal / deflection / answer classifier.

Embeddings of the reply (its opening above all) and of the prompt, their relevance to each
other, length and script cues, and learned character n-grams feed a calibrated logistic
regression. Rules handle only what is not text: provider blocks, errors and empty replies.
"""

LABELS: tuple[str, ...] = ("refusal", "deflection", "answer")
# The shipped recipe's share of training weight for real model replies (model.balanced_weights).
REAL_SHARE = 0.3
