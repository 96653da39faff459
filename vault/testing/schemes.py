"""Conformance suites for numbering schemes and classifiers (part of the ``vault.testing`` kit).

PYTEST_DONT_REWRITE: the suite's own messages say what is wrong; pytest's comparison of large
objects would only add noise (and time).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from vault import plugins
from vault.testing.base import EDGE_SEQUENCES, Conformance, RecordingFacts, SequenceAllocator, sample_facts


def _facts_for(obj: Any) -> frozenset[str]:
    declared = plugins.declared_facts(obj)
    unknown = declared - plugins.FACTS
    assert not unknown, f"declares facts the vault does not have: {sorted(unknown)}"
    return declared


def _check_reads(name: str, allowed: frozenset[str], facts: Mapping[str, str], call: Any) -> None:
    """Call plugin code with a recording mapping; fail, saying which, if it asked for undeclared facts."""
    recording = RecordingFacts(facts, allowed)
    try:
        call(recording)
    finally:
        # Checked even when the call raised: the KeyError is a symptom, the undeclared read the cause.
        if recording.refused:
            pytest.fail(f"{name}: asked for facts it did not declare or is not given: {sorted(recording.refused)}"
                        f" (declared: {sorted(allowed)})", pytrace=False)


class NumberingSchemeConformance(Conformance):
    """The contract of a numbering scheme [R-3.2.2]: valid, unique, deterministic, safe under concurrency."""

    family = "numbering_schemes"
    #: How many sequences the uniqueness test issues numbers for.
    sequences: ClassVar[int] = 10_000
    #: Workers of the concurrency tests, and numbers each one issues.
    workers: ClassVar[int] = 4
    per_worker: ClassVar[int] = 25

    def _numbers(self, scheme: Any, facts: list[dict[str, str]]) -> list[str]:
        seqs = [*range(1, self.sequences + 1), *EDGE_SEQUENCES]
        return [scheme.number(sequence=seq, facts=facts[seq % len(facts)]) for seq in seqs]

    def test_numbers_are_valid(self, vault_case: tuple) -> None:
        """Every number is 1-64 printable ASCII characters without whitespace or '/'."""
        name, registration, options = vault_case
        scheme = registration.factory(options)
        for seq, facts in zip([1, 9, 10, *EDGE_SEQUENCES], sample_facts(200) * 2):
            problem = plugins.check_archive_number(scheme.number(sequence=seq, facts=facts))
            assert problem is None, f"{name}: invalid archive number for sequence {seq}: {problem}"

    def test_numbers_unique_across_sequences(self, vault_case: tuple) -> None:
        """No number is ever issued twice, whether facts stay the same or vary."""
        name, registration, options = vault_case
        scheme = registration.factory(options)
        for label, facts in (("fixed facts", sample_facts(1)), ("varying facts", sample_facts(97))):
            seen: dict[str, int] = {}
            for i, number in enumerate(self._numbers(scheme, facts)):
                problem = plugins.check_archive_number(number)
                assert problem is None, f"{name}: invalid archive number ({label}): {problem}"
                assert number not in seen, (f"{name}: duplicate archive number {number!r} ({label}) "
                                            f"for sequences {seen[number] + 1} and {i + 1}")
                seen[number] = i

    def test_deterministic(self, vault_case: tuple) -> None:
        """The same sequence and facts give the same number, from the same or a fresh scheme, in any order."""
        name, registration, options = vault_case
        facts = sample_facts(31)
        first = self._numbers(registration.factory(options), facts)[:500]
        again = self._numbers(registration.factory(options), facts)[:500]
        reverse = [registration.factory(options).number(sequence=s, facts=facts[s % len(facts)])
                   for s in range(500, 0, -1)][::-1]
        for seq, (a, b, c) in enumerate(zip(first, again, reverse), start=1):
            assert a == b == c, f"{name}: not deterministic: sequence {seq} gave {a!r}, {b!r} and {c!r}"

    def test_sees_only_declared_facts(self, vault_case: tuple) -> None:
        """The scheme reads only facts it declares (by default all four)."""
        name, registration, options = vault_case
        scheme = registration.factory(options)
        allowed = _facts_for(scheme)
        for seq, facts in enumerate(sample_facts(50), start=1):
            _check_reads(name, allowed, facts, lambda recording, seq=seq: scheme.number(sequence=seq, facts=recording))

    def test_through_the_vault(self, vault_case: tuple) -> None:
        """The registration builds a scheme that works through the vault's guarded path."""
        name, registration, options = vault_case
        scheme = registration(options)
        for seq, facts in enumerate(sample_facts(20), start=1):
            scheme.number(sequence=seq, facts={**facts, "customer_name": "must never be passed"})

    def _check_allocations(self, name: str, allocator: SequenceAllocator, errors: list[str]) -> None:
        assert not errors, f"{name}: under concurrency: {errors[0]}"
        numbers = allocator.numbers()
        expected = self.workers * self.per_worker
        assert len(numbers) == expected, f"{name}: {len(numbers)} numbers issued, {expected} expected"
        assert len(set(numbers)) == expected, f"{name}: duplicate archive numbers under concurrency"

    def test_unique_under_concurrent_threads(self, vault_case: tuple, vault_allocator: SequenceAllocator) -> None:
        """Threads allocating through a locked counter never get the same number."""
        name, registration, options = vault_case
        errors: list[str] = []

        def work(worker: int) -> None:
            scheme = registration.factory(options)
            try:
                for facts in sample_facts(self.per_worker, seed=worker):
                    vault_allocator.issue(scheme, facts)
            except Exception as exc:  # reported by the main thread, where pytest sees it
                errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=work, args=(w,)) for w in range(self.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._check_allocations(name, vault_allocator, errors)

    def test_unique_under_concurrent_processes(self, vault_case: tuple, vault_allocator: SequenceAllocator) -> None:
        """Processes, each with its own scheme object, allocating through a locked counter never collide."""
        name, registration, options = vault_case
        if "fork" not in multiprocessing.get_all_start_methods():
            pytest.skip("needs the fork start method")
        errors_file = vault_allocator.directory / "errors"

        def work(worker: int) -> None:
            try:
                scheme = registration.factory(options)
                for facts in sample_facts(self.per_worker, seed=worker):
                    vault_allocator.issue(scheme, facts)
            except BaseException as exc:
                with open(errors_file, "a") as out:
                    out.write(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}\n")
                os._exit(1)
            os._exit(0)

        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=work, args=(w,)) for w in range(self.workers)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        errors = errors_file.read_text().splitlines() if errors_file.exists() else []
        errors += [f"worker exited with {p.exitcode}" for p in procs if p.exitcode and not errors]
        self._check_allocations(name, vault_allocator, errors)


class ClassifierConformance(Conformance):
    """The contract of a classifier [R-3.2.1]: valid class paths, deterministic, reads only declared facts."""

    family = "classifiers"
    #: How many sample facts the classifier is tried with.
    samples: ClassVar[int] = 500

    def test_paths_are_valid(self, vault_case: tuple) -> None:
        """Every class path is '/'-joined segments of [a-z0-9-]+."""
        name, registration, options = vault_case
        classifier = registration.factory(options)
        for facts in sample_facts(self.samples):
            problem = plugins.check_class_path(classifier.classify(facts=facts))
            assert problem is None, f"{name}: invalid class path for {facts}: {problem}"

    def test_deterministic(self, vault_case: tuple) -> None:
        """The same facts give the same class path, from the same or a fresh classifier."""
        name, registration, options = vault_case
        one, two = registration.factory(options), registration.factory(options)
        for facts in sample_facts(100):
            paths = {one.classify(facts=facts), one.classify(facts=dict(facts)), two.classify(facts=facts)}
            assert len(paths) == 1, f"{name}: not deterministic: {facts} gave {sorted(paths)}"

    def test_sees_only_declared_facts(self, vault_case: tuple) -> None:
        """The classifier reads only facts it declares (by default all four), never anything else."""
        name, registration, options = vault_case
        classifier = registration.factory(options)
        allowed = _facts_for(classifier)
        for facts in sample_facts(50):
            _check_reads(name, allowed, facts, lambda recording: classifier.classify(facts=recording))

    def test_through_the_vault(self, vault_case: tuple) -> None:
        """The registration builds a classifier that works through the vault's guarded path."""
        name, registration, options = vault_case
        classifier = registration(options)
        for facts in sample_facts(20):
            classifier.classify(facts={**facts, "customer_name": "must never be passed"})


