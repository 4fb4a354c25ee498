"""The ``fcnseg`` command line: parse arguments, call the library, print. No logic lives here."""
