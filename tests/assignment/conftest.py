"""Copies made once per session and shared by the assignment tests (making one takes about a second)."""
import pytest

from minidl.assignment.make import make


@pytest.fixture(scope="session")
def copies(tmp_path_factory):
    """copies("ex2_sentiment") -> a student copy; copies("compression", solution=True) -> a solution copy."""
    made = {}

    def get(name, solution=False):
        key = (name, solution)
        if key not in made:
            made[key] = make(name, tmp_path_factory.mktemp("copies") / f"{name}{'_solution' if solution else ''}",
                             solution=solution)
        return made[key]

    return get
