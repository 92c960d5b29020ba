"""attnkit_train: a small PyTorch implementation of attnkit's reference decoder, its training
loop and its checkpoint writer. The math is docs/spec's (shared/spec/attention-semantics.md);
the checkpoint layout is apps/reference-model/docs/checkpoint-format.md."""
