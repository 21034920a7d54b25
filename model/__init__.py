"""Text-classification models for the bot: datasets, training, prediction.

Nothing here imports discord; ``model.service.ModelService`` is the entry point.
"""
