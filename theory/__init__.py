"""The course's chain-rule material: Markdown derivations and the code behind their figure."""
