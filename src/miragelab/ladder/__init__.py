"""A real model ladder: tiny GPTs trained on arithmetic, decoded with exact log-probs.

``tasks``        deterministic arithmetic generators with a train/test split by operand pairs
``model``        a nanoGPT-style decoder with GPT-2's parameter layout, KV-cache decoding
``hf``           export to (and import from) Hugging Face checkpoint folders
``presets``      the ladders (sizes, steps, learning rates) and their compute allocation
``train``        training with checkpoints and exact resume
``evaluate``     the samples table: greedy predictions and teacher-forced target log-probs
``predictions``  the paper's three predictions on the ladder's own outputs

Heavy imports (torch) live in the modules that need them; importing this
package is cheap.
"""
