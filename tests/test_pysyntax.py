"""minidl.pysyntax.parse: ast.parse's tree, built while no other thread of the process parses."""
import ast
import threading

from minidl import pysyntax


def test_parse_gives_ast_parse_tree():
    source = "def f(x):\n    return x + 1\n"
    assert ast.dump(pysyntax.parse(source, "f.py")) == ast.dump(ast.parse(source, "f.py"))
    assert isinstance(pysyntax.parse("x + 1", mode="eval"), ast.Expression)


def test_a_second_thread_waits_while_one_parses():
    """The lock is what keeps two trees from being built at once: while it is held (one thread
    parsing), another thread's parse does not finish; it finishes once the lock is free."""
    done = threading.Event()
    worker = threading.Thread(target=lambda: (pysyntax.parse("y = 2"), done.set()))
    with pysyntax._LOCK:
        worker.start()
        assert not done.wait(0.2), "a parse ran while another held the lock"
    worker.join(5)
    assert done.is_set(), "the waiting parse never finished once the lock was free"


def test_many_threads_parsing_at_once_all_get_their_tree():
    source = "\n".join(f"def f{i}(a, b):\n    return [a * b for _ in range({i})]\n" for i in range(200))
    expected = ast.dump(ast.parse(source))
    results, errors = [], []

    def work():
        try:
            results.extend(ast.dump(pysyntax.parse(source)) for _ in range(5))
        except Exception as e:  # noqa: BLE001 -- any error fails the test below, with its text
            errors.append(repr(e))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [expected] * 20
