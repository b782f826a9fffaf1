"""``python -m newsletter`` runs the command line."""

from newsletter.cli import main

if __name__ == "__main__":
    main()
