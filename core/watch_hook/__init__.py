"""Put on a watched command's PYTHONPATH by ``gpt2-tui watch``: its sitecustomize.py hooks PaddleNLP's Trainer."""
