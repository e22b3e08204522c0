"""The Markdown a student copy carries: the handout and the top-level README, trimmed.

Both are cut along their ``## `` sections (headings inside code fences do not count): the
handout loses the sections that answer its own questions (our results, our discussion) and
gains the list of implementation tasks, generated from the manifest; the README keeps its
introduction and the sections the manifest names (its Layout naming only what the copy holds), and says
how to work and grade.
"""
from __future__ import annotations

import re

from .manifest import ASSIGNMENTS, MANIFEST


def split_sections(text):
    """[(title, chunk)]: the text before the first ``## `` heading (title None), then one chunk per
    ``## `` section, heading line included. Joining the chunks gives the text back."""
    sections, title, chunk, fenced = [], None, [], False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            sections.append((title, "".join(chunk)))
            title, chunk = line[3:].strip(), []
        chunk.append(line)
    sections.append((title, "".join(chunk)))
    return [(t, c) for t, c in sections if t is not None or c]


def section_titles(text):
    return [title for title, _ in split_sections(text) if title is not None]


def tasks_markdown(manifest, tasks):
    """The "Implementation tasks" section: what to write for each task, its points and its tests."""
    out = ["## Implementation tasks (graded by `minidl grade`)\n\n",
           "In this copy of minidl the bodies of the functions and methods below are missing: each raises\n"
           "`NotImplementedError` until you write it. Their signatures, their docstrings and the module\n"
           "docstrings around them (the equations, the shapes) are all there. Check your work at any time,\n"
           "from the top folder of this copy:\n\n"
           "```bash\n"
           "minidl grade             # a score per task, and the first failing check of each, in plain words\n"
           "minidl grade --task 2    # only task 2\n"
           "```\n\n"
           f"A task earns its points only when every one of its checks passes ({sum(t.points for t in tasks)} "
           "points in all).\nThe checks are float64 gradient checks on small inputs (your backward against "
           "centred finite\ndifferences of your forward), forward values on fixed inputs, statistics of "
           "random choices,\nand training runs that must learn, as each task's tests say. The forward values are "
           "compared with\nreference values that this copy does not hold: here the report says how many of a "
           "task's\nchecks \"compare with the reference values, which this grading did not have\", and that "
           "task\nscores 0; every other check runs. Your instructor grades with them.\n\n"]
    for task in tasks:
        out.append(f"### {task.number}. {task.title} ({task.points} points)\n\n")
        if task.description:
            out.append(task.description.strip() + "\n\n")
        by_file = {}
        for target in task.targets:
            by_file.setdefault(target.path, []).append(f"`{target.qualname}`")
        out.append("Write " + "; ".join(f"{', '.join(names)} in `{path}`" for path, names in by_file.items())
                   + ".\n")
        tests = ", ".join(f"`assignments/{manifest.name}/{spec}`" for spec in task.tests)
        out.append(f"Graded by {tests}.\n\n")
    return "".join(out)


def student_handout(text, manifest, tasks):
    """The handout without the manifest's ``drop_sections``, with the implementation tasks inserted before
    the ``insert_before`` section (at the end when there is none)."""
    kept = [(title, chunk) for title, chunk in split_sections(text) if title not in manifest.drop_sections]
    position = next((i for i, (title, _) in enumerate(kept) if title == manifest.insert_before), len(kept))
    chunks = [chunk for _, chunk in kept]
    if position == len(chunks) and chunks and not chunks[-1].endswith("\n\n"):
        chunks[-1] = chunks[-1].rstrip("\n") + "\n\n"
    chunks.insert(position, tasks_markdown(manifest, tasks))
    return "".join(chunks)


def copy_layout(chunk, manifest):
    """The README's Layout as a copy has it: the package's lines, and assignments/ holding this assignment alone.
    It listed every exercise and the repository's theory/ and tests/, which a copy does not hold."""
    lines, keep, fenced = [], True, False
    for line in chunk.splitlines(keepends=True):
        if line.startswith("```"):
            fenced, keep = not fenced, True
        elif fenced and line[:1].strip():   # an entry: its path, what it holds, and indented lines that go on
            keep = line.startswith("minidl/")
            if line.startswith(f"{ASSIGNMENTS}/"):
                width, path = len(re.match(r"\S+\s*", line).group()), f"{ASSIGNMENTS}/{manifest.name}/"
                lines.append((f"{path:<{width}}" if len(path) < width else f"{path}\n{'':<{width}}")
                             + f"this assignment alone: its handout (README.md), {MANIFEST} and grading/ "
                               f"(the tests minidl grade runs)\n")
        if keep:
            lines.append(line)
    return "".join(lines)


def student_readme(text, manifest):
    """The repository README cut down to its introduction and the manifest's ``readme_sections``, with a
    first section that says what this copy is."""
    sections = split_sections(text)
    intro = [chunk for title, chunk in sections if title is None]
    kept = [copy_layout(chunk, manifest) if title == "Layout" else chunk for title, chunk in sections
            if title in manifest.readme_sections]
    about = ("## This copy: " + manifest.title + "\n\n"
             f"This is a student copy of minidl for the assignment `{manifest.name}`. The handout, with the\n"
             f"functions you write, is [{manifest.handout}]({manifest.handout}). It holds the package and\n"
             f"this assignment; the course repository's own tests/, results and runs are not in it.\n\n"
             "```bash\n"
             "make install           # .venv with minidl (this copy, editable) and pytest\n"
             ".venv/bin/minidl grade  # your score per task\n"
             "```\n\n")
    return "".join(intro) + about + "".join(kept)
