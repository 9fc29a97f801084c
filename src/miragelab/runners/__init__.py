"""Running models and units of work: the code that produces samples, kept apart from readers.

``work`` (a unit, a job, the local executor), ``units`` (running units with
resume, collecting their parts), ``ray_executor`` (units as Ray tasks), ``hf``
(local Hugging Face checkpoints), ``openai_api`` (an OpenAI-compatible
endpoint), ``tasks`` (the tasks of ``mirage eval``) and ``serve`` (``mirage
serve``). Importing this package is cheap: each module imports what it needs.
"""
