"""What several test modules share: fixtures, fakes' clients and builders. A test module imports
from here (or from conftest), never from another test module."""
