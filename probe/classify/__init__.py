"""The refusal / deflection / answer classifier.

Embeddings of the reply (its opening above all) and of the prompt, their relevance to each
other, length and script cues feed a calibrated head: a small neural network by default, or a
logistic regression that also sees learned character n-grams. Rules handle only what is not
text: provider blocks, errors and empty replies.
"""

LABELS: tuple[str, ...] = ("refusal", "deflection", "answer")
# The shipped recipe's share of training weight for real model replies (model.balanced_weights).
REAL_SHARE = 0.3
# The heads `probe train --head` can fit; the first is the default and the shipped one.
HEADS: tuple[str, ...] = ("mlp", "linear")
