"""`genlab explore`: a local web app to move through a trained model's latent space."""
