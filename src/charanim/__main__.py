"""``python -m charanim`` (and ``accelerate launch -m charanim train ...``): the same CLI."""

from charanim.cli.app import main

if __name__ == "__main__":
    main()
