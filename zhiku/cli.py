"""The zhiku command line: JSON with --json, readable text otherwise, errors on stderr."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import contextmanager

from zhiku.retrieval.types import LOCAL_ADMIN
from zhiku.core.errors import ZhikuError
from zhiku.core.settings import load_settings


def _print_json(data) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


@contextmanager
def _services():
    from zhiku.services import build_services

    services = build_services(load_settings())
    try:
        try:
            services.worker.recover()  # finish or roll back what a killed process left, before anything else
        except ZhikuError as e:
            logging.getLogger("zhiku").warning("could not resume interrupted jobs: %s", e)
        yield services
    finally:
        services.close()


def _acting(services, args):
    """The user a command acts as: --user NAME, or the local admin (whoever runs the CLI on the server)."""
    return services.accounts.acting_user(getattr(args, "user", None))


@contextmanager
def _progress_bar(enabled: bool):
    """A rich progress bar on stderr: one task per file, advanced by chunks embedded."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stage]}"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as bar:
        tasks: dict[str, int] = {}

        def on_progress(p) -> None:
            key = f"{p.file_index}:{p.file_name}"
            if key not in tasks:
                tasks[key] = bar.add_task(f"[{p.file_index + 1}/{p.file_count}] {p.file_name[:40]}", total=None, stage="")
            task = tasks[key]
            if p.stage == "embedding":
                bar.update(task, total=p.total, completed=p.done, stage="embedding")
            elif p.stage in ("indexed", "unchanged"):
                bar.update(task, total=max(p.total, 1), completed=max(p.total, 1), stage=p.stage)
            else:
                bar.update(task, stage=p.stage)

        yield on_progress


def cmd_ingest(args) -> int:
    with _services() as s, _progress_bar(not args.json and sys.stderr.isatty()) as progress:
        results = s.ingestor.ingest_paths(
            args.paths, args.collection or s.settings.default_collection, _acting(s, args), progress
        )
    if args.json:
        _print_json({"files": [r.to_dict() for r in results]})
    else:
        for r in results:
            detail = f"{r.chunks} chunks" if r.status != "failed" else r.error
            print(f"{r.status:9} {r.path}  ({detail})")
        counts = {k: sum(r.status == k for r in results) for k in ("added", "updated", "unchanged", "failed")}
        print(", ".join(f"{v} {k}" for k, v in counts.items()))
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        print(f"zhiku: {r.path}: {r.error}", file=sys.stderr)
    return 1 if failed or not results else 0


def cmd_search(args) -> int:
    with _services() as s:
        collections = [args.collection] if args.collection else None
        hits = s.searcher.search(args.query, _acting(s, args), k=args.k, collections=collections, mode=args.mode)
    if args.json:
        _print_json({"hits": [h.to_dict() for h in hits]})
    else:
        if not hits:
            print("no results")
        for h in hits:
            page = f" p.{h.chunk.page}" if h.chunk.page is not None else ""
            print(f"{h.rank}. {h.chunk.file_name}{page}  [{h.score:.3f}]\n   {h.chunk.text[:200]}")
    return 0


def cmd_ask(args) -> int:
    with _services() as s:
        collections = [args.collection] if args.collection else None
        user = _acting(s, args)
        if args.json:
            answer = s.answers.ask(args.question, user, collections=collections)
            _print_json(answer.to_dict())
            return 0
        answer = _stream_to_terminal(s.answers.stream(args.question, user, collections=collections))
    _print_answer(answer)
    return 0


def _stream_to_terminal(events):
    """Print an answer as it is written; return the finished Answer."""
    answer = None
    for event in events:
        if event.kind == "delta":
            print(event.text, end="", flush=True)
        elif event.kind == "reset":
            print("\n[answer interrupted; falling back to quoted passages]\n")
        elif event.kind == "done":
            answer = event.answer
    return answer


def _acting_user(name: str | None):
    """The user a command acts as: the local admin (accounts come with the app store)."""
    if name in (None, "", LOCAL_ADMIN.name):
        return LOCAL_ADMIN
    raise ZhikuError(
        f"no user {name!r}: accounts are not set up on this installation; leave out --user "
        f"(or use --user {LOCAL_ADMIN.name}) to act as the local admin"
    )


def _print_answer(answer) -> None:
    """An answer's notice and citations after its streamed text."""
    print()
    if answer.notice:
        print(f"\nnote: {answer.notice}", file=sys.stderr)
    if answer.mode == "ollama" and answer.text:
        print("\n(verified citations below)")
    for c in answer.citations:
        page = f", p.{c.page}" if c.page is not None else ""
        print(f"[{c.n}] {c.file_name}{page}: {c.text[:160]}")


def cmd_chat(args) -> int:
    user = _acting_user(args.user)
    interactive = sys.stdin.isatty()
    with _services() as s:
        collections = [args.collection] if args.collection else None
        history: list[dict] = []
        while True:
            if interactive:
                print("› ", end="", file=sys.stderr, flush=True)
            line = sys.stdin.readline()
            if not line:
                break
            question = line.strip()
            if not question:
                continue
            if args.json:
                answer = s.answers.ask(question, user, history, collections)
                sys.stdout.write(json.dumps(answer.to_dict(), ensure_ascii=False) + "\n")
                sys.stdout.flush()
            else:
                answer = _stream_to_terminal(s.answers.stream(question, user, history, collections))
                _print_answer(answer)
                print(flush=True)
            # the conversation so far: follow-ups are read against it
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]
            history = history[-12:]
    return 0


def cmd_stats(args) -> int:
    with _services() as s:
        stats = s.ingestor.stats(_acting(s, args))
        backend = "qdrant-server" if s.settings.qdrant_url else "qdrant-edge"
    data = {"documents": stats.documents, "chunks": stats.chunks, "collections": stats.collections}
    if args.json:
        _print_json(data)
    else:
        print(f"{stats.documents} documents, {stats.chunks} chunks ({backend})")
        for name, count in sorted(stats.collections.items()):
            print(f"  {name}: {count} documents")
    return 0


def cmd_delete(args) -> int:
    with _services() as s:
        removed = s.ingestor.delete(args.key, _acting(s, args), args.collection)
    if args.json:
        _print_json({"deleted": [{"doc_id": d.id, "file_name": d.file_name, "path": d.path,
                                  "collection": d.collection, "chunks": d.chunks} for d in removed]})
    else:
        for d in removed:
            print(f"deleted {d.path} ({d.collection}, {d.chunks} chunks)")
    return 0


def cmd_reindex(args) -> int:
    if args.collection:
        return _reindex_collection(args)
    with _services() as s, _progress_bar(not args.json and sys.stderr.isatty()) as progress:
        job = s.ingestor.reindex(_acting(s, args), progress)
        documents, chunks, _ = s.store.stats()
    ok = job.state == "done"
    if args.json:
        _print_json({"status": job.state, "documents": documents, "chunks": chunks, "error": job.error})
    elif ok:
        print(f"re-indexed {documents} documents ({chunks} chunks)")
    if not ok:
        print(f"zhiku: re-index failed: {job.error}", file=sys.stderr)
    return 0 if ok else 1


def _reindex_collection(args) -> int:
    """Re-embed one collection's documents in place; the others are untouched."""
    with _services() as s, _progress_bar(not args.json and sys.stderr.isatty()) as progress:
        jobs = s.ingestor.reindex_collection(args.collection, _acting(s, args), progress)
        documents, chunks, _ = s.store.stats([args.collection])
    failed = [j for j in jobs if j.state == "failed"]
    error = "; ".join(f"{j.path}: {j.error}" for j in failed[:5]) or None
    if args.json:
        _print_json({"status": "failed" if failed else "done", "documents": documents, "chunks": chunks,
                     "error": error})
    elif not failed:
        print(f"re-indexed {documents} documents of {args.collection} ({chunks} chunks)")
    if failed:
        print(f"zhiku: {len(failed)} document(s) kept their previous version: {error}", file=sys.stderr)
    return 1 if failed else 0


def cmd_recover(args) -> int:
    """Move a damaged SQLite catalogue aside and rebuild it from the stored originals."""
    import time as _time

    from zhiku.core.errors import StoreUnavailable
    from zhiku.ingest.pipeline import restore_catalogue
    from zhiku.services import build_services

    settings = load_settings()
    try:
        services = build_services(settings)
    except StoreUnavailable:
        if settings.database_url:
            raise ZhikuError("the PostgreSQL catalogue is unreadable: restore it from a backup, or point "
                             "ZHIKU_DATABASE_URL at an empty database and run `zhiku recover` again") from None
        aside = settings.db_path.with_name(f"zhiku.db.damaged-{int(_time.time())}")
        for suffix in ("", "-wal", "-shm"):
            source = settings.db_path.with_name(settings.db_path.name + suffix)
            if source.exists():
                source.rename(aside.with_name(aside.name + suffix))
        print(f"moved the damaged database to {aside}", file=sys.stderr)
        services = build_services(settings)
    try:
        results = restore_catalogue(services.ingestor, LOCAL_ADMIN)
        if not settings.qdrant_url and settings.index_dir.is_dir():  # shards the lost catalogue pointed at
            from zhiku.ingest.generations import drop_edge_shard

            known = {g.name for g in services.store.generations()}
            for shard in settings.index_dir.iterdir():
                if shard.is_dir() and shard.name not in known:
                    drop_edge_shard(settings.index_dir, shard.name)
    finally:
        services.close()
    if args.json:
        _print_json({"files": [r.to_dict() for r in results]})
    else:
        print(f"recovered {sum(r.status != 'failed' for r in results)} of {len(results)} documents")
    for r in results:
        if r.status == "failed":
            print(f"zhiku: {r.path}: {r.error}", file=sys.stderr)
    return 1 if any(r.status == "failed" for r in results) else 0


def cmd_eval(args) -> int:
    from zhiku.retrieval.evaluate import (
        CONFIGURATIONS,
        evaluate,
        evaluate_answers,
        evaluate_conversations,
        evaluate_gate,
        load_conversations,
        load_questions,
    )

    questions = load_questions(args.qa, args.split)
    conversations = load_conversations(args.qa, args.split)
    if args.conversations:
        conversations += load_conversations(args.conversations, args.split)
    names = args.configs.split(",") if args.configs else list(CONFIGURATIONS)
    unknown = [n for n in names if n not in CONFIGURATIONS]
    if unknown:
        raise ZhikuError(f"unknown configuration {unknown}: choose from {', '.join(CONFIGURATIONS)}")
    splits = sorted({q.split for q in questions if q.split})
    with _services() as s:
        results = evaluate(s.searcher, questions, LOCAL_ADMIN, names)
        by_split = {sp: evaluate(s.searcher, [q for q in questions if q.split == sp], LOCAL_ADMIN, ["hybrid"])[0]
                    for sp in splits if "hybrid" in names} if len(splits) > 1 else {}
        gate = evaluate_gate(s.searcher, questions, LOCAL_ADMIN)
        answers = {}
        talks = {}
        if not args.no_answers:
            groups = {"all": questions} | {sp: [q for q in questions if q.split == sp] for sp in splits if len(splits) > 1}
            answers = {name: evaluate_answers(s.answers, group, LOCAL_ADMIN) for name, group in groups.items()}
            if conversations:
                talk_groups = {"all": conversations} | {
                    sp: [c for c in conversations if c.split == sp] for sp in splits if len(splits) > 1}
                talks = {name: evaluate_conversations(s.answers, group, LOCAL_ADMIN)
                         for name, group in talk_groups.items() if group}
        reranker = getattr(s.searcher.reranker, "name", "none")
        backend = s.index.backend
        mode = s.answers.mode
    kinds = sorted({q.kind for q in questions} - {"all", "unanswerable"})
    if args.json:
        _print_json({
            "questions": len(questions), "backend": backend, "reranker": reranker,
            "configurations": {r.name: {k: r.metrics(k) for k in ["all", *kinds]} for r in results},
            "threshold": {"answerable_kept": gate.answerable_kept, "answerable": gate.answerable,
                          "unanswerable_refused": gate.unanswerable_refused, "unanswerable": gate.unanswerable,
                          "cross_language_refused": gate.cross_language_refused,
                          "off_topic_refused": gate.off_topic_refused, "off_topic": gate.off_topic},
            "splits": {sp: {"hybrid": r.metrics()} for sp, r in by_split.items()},
            "answer_mode": mode,
            "answers": {name: a.to_dict() for name, a in answers.items()},
            "conversations": {name: c.to_dict() for name, c in talks.items()},
        })
        return 0
    answerable = sum(q.evidence is not None for q in questions)
    split_note = " (" + ", ".join(f"{sp} {sum(q.split == sp and q.evidence is not None for q in questions)}"
                                  for sp in splits) + ")" if splits else ""
    print(f"{answerable} answerable questions{split_note} · index {backend} · reranker {reranker}")
    print(f"{'configuration':<15}{'hit@1':>8}{'hit@5':>8}{'MRR':>8}{'nDCG@10':>9}")
    for r in results:
        m = r.metrics()
        print(f"{r.name:<15}{m['hit@1']:>8.3f}{m['hit@5']:>8.3f}{m['mrr']:>8.3f}{m['ndcg@10']:>9.3f}")
    for sp, r in by_split.items():
        m = r.metrics()
        print(f"{'hybrid · ' + sp:<15}{m['hit@1']:>8.3f}{m['hit@5']:>8.3f}{m['mrr']:>8.3f}{m['ndcg@10']:>9.3f}")
    for kind in kinds:
        print(f"\n{kind}: " + "  ".join(
            f"{r.name} hit@5 {r.metrics(kind)['hit@5']:.2f} MRR {r.metrics(kind)['mrr']:.2f}" for r in results))
    print(f"\nrelevance threshold: answered {gate.answerable_kept}/{gate.answerable} answerable questions "
          f"({gate.cross_language_refused} cross-language refused), "
          f"refused {gate.unanswerable_refused}/{gate.unanswerable} unanswerable ones "
          f"(off-topic {gate.off_topic_refused}/{gate.off_topic})")
    for name, a in answers.items():
        label = "answers" if name == "all" else f"answers · {name}"
        print(f"{label} ({mode}): quoted the evidence {a.quoted}/{a.answerable}, cited it {a.cited}/{a.answerable}, "
              f"refused {a.refused} answerable ({a.cross_language_refused} cross-language), "
              f"refused {a.unanswerable_refused}/{a.unanswerable} unanswerable (off-topic {a.off_topic_refused}/{a.off_topic})")
    for name, c in talks.items():
        label = "conversations" if name == "all" else f"conversations · {name}"
        print(f"{label}: follow-ups answered {c.followed}/{c.follow_ups}, unrelated questions leaked "
              f"{c.leaked}/{c.unrelated}, answered or refused correctly {c.unrelated_correct}/{c.unrelated}")
    if args.verbose_misses:
        for name, a in answers.items():
            for miss in a.misses:
                print(f"  [{name}] {miss}")
        for name, c in talks.items():
            for miss in c.misses:
                print(f"  [{name}] {miss}")
    return 0


def _password(args) -> str | None:
    """The password piped in with --password-stdin (first line), or None to generate one."""
    if not args.password_stdin:
        return None
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise ZhikuError("--password-stdin read an empty line: pipe the password in, e.g. "
                         "`printf '%s\\n' \"$PASS\" | zhiku user add NAME --password-stdin`")
    return line


def _names(values: list[str] | None) -> list[str]:
    """Group names from repeated and comma-separated options."""
    return [n.strip() for v in values or [] for n in v.split(",") if n.strip()]


def _when(stamp: float) -> str:
    import time as _time

    return _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(stamp))


def cmd_user_add(args) -> int:
    with _services() as s:
        account, generated = s.accounts.add_user(_acting(s, args), args.name, _password(args),
                                                 groups=_names(args.group), admin=args.admin, email=args.email)
    if args.json:
        _print_json({"user": account.to_dict(), "password": generated})
    else:
        groups = ", ".join(account.groups) or "none"
        print(f"created {'admin' if account.is_admin else 'user'} {account.name} (groups: {groups})")
        if generated:
            print(f"one-time password: {generated}  (shown only now: hand it over, then `zhiku user passwd`)")
    return 0


def cmd_user_list(args) -> int:
    with _services() as s:
        accounts = s.accounts.users(_acting(s, args))
    if args.json:
        _print_json({"users": [a.to_dict() for a in accounts]})
    else:
        for a in accounts:
            flags = " ".join(f for f, on in (("admin", a.is_admin), ("disabled", a.disabled)) if on)
            print(f"{a.name:24} {flags:15} groups: {', '.join(a.groups) or '-'}")
    return 0


def cmd_user_passwd(args) -> int:
    with _services() as s:
        generated = s.accounts.reset_password(_acting(s, args), args.name, _password(args))
    if args.json:
        _print_json({"user": args.name, "password": generated})
    else:
        print(f"new password for {args.name}" + (f": {generated}  (shown only now)" if generated else " set"))
        print("its signed-in browsers were signed out")
    return 0


def cmd_user_enable(args) -> int:
    disabled = args.command_name == "disable"
    with _services() as s:
        account = s.accounts.set_disabled(_acting(s, args), args.name, disabled)
    if args.json:
        _print_json({"user": account.to_dict()})
    else:
        print(f"{'disabled' if disabled else 'enabled'} {account.name}")
    return 0


def cmd_user_groups(args) -> int:
    with _services() as s:
        account = s.accounts.set_groups(_acting(s, args), args.name, _names(args.group))
    if args.json:
        _print_json({"user": account.to_dict()})
    else:
        print(f"{account.name}: groups {', '.join(account.groups) or 'none'}")
    return 0


def cmd_collection_create(args) -> int:
    with _services() as s:
        access, created = s.accounts.create_collection(_acting(s, args), args.name, _names(args.read),
                                                       _names(args.write))
    if args.json:
        _print_json({"collection": access.to_dict(), "created": created})
    else:
        print(f"{'created' if created else 'updated'} {access.name}: read {', '.join(access.read) or '-'}; "
              f"write {', '.join(access.write) or '-'}")
    return 0


def cmd_collection_list(args) -> int:
    with _services() as s:
        user = _acting(s, args)
        collections = s.accounts.collections(user)
        _, _, counts = s.store.stats([c.name for c in collections])
    if args.json:
        _print_json({"collections": [{**c.to_dict(), "documents": counts.get(c.name, 0)} for c in collections]})
    else:
        if not collections:
            print("no collections")
        for c in collections:
            print(f"{c.name:24} {counts.get(c.name, 0):6} documents  read: {', '.join(c.read) or '-'}  "
                  f"write: {', '.join(c.write) or '-'}")
    return 0


def cmd_audit(args) -> int:
    with _services() as s:
        entries = s.accounts.audit_log(_acting(s, args), limit=args.limit or None, who=args.actor,
                                       action=args.action)
    if args.json:
        _print_json({"entries": [e.to_dict() for e in entries]})
    else:
        for e in entries:
            print("  ".join(x for x in (_when(e.at), e.actor, e.action, e.target or "", e.detail or "",
                                        e.address or "") if x))
    return 0


def cmd_feedback(args) -> int:
    from zhiku.feedback import feedback_export

    with _services() as s:
        rows = s.store.feedback_rows(_acting(s, args))
    data = feedback_export(rows, args.format)
    if args.out:
        try:
            with open(args.out, "wb") as f:
                f.write(data)
        except OSError as e:
            raise ZhikuError(f"cannot write {args.out} ({e.strerror}): choose another --out file") from e
        print(f"wrote {len(rows)} ratings to {args.out}", file=sys.stderr)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


def _add_user_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", metavar="NAME", help="act as this account (default: the local admin)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zhiku", description="zhiku (知库): a private knowledge base with cited answers")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="index files or folders (recursively)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--collection", help="collection to put the documents in")
    p.add_argument("--json", action="store_true")
    _add_user_option(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", help="find passages")
    p.add_argument("query")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--collection")
    p.add_argument("--mode", choices=("hybrid", "dense", "sparse"), default="hybrid")
    p.add_argument("--json", action="store_true")
    _add_user_option(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("--collection")
    p.add_argument("--json", action="store_true")
    _add_user_option(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("stats", help="documents, chunks and collections")
    p.add_argument("--json", action="store_true")
    _add_user_option(p)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("delete", help="delete a document by id, path or file name")
    p.add_argument("key", metavar="DOC_ID_OR_PATH")
    p.add_argument("--collection")
    p.add_argument("--json", action="store_true")
    _add_user_option(p)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("chat", help="answer questions from stdin, one a line, as one conversation")
    p.add_argument("--collection")
    p.add_argument("--user", help="act as this user (default: the local admin)")
    p.add_argument("--json", action="store_true", help="one answer object a line, with the keys of `ask --json`")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("eval", help="measure retrieval and answer quality on a question set (JSON lines)")
    p.add_argument("qa", metavar="QA.jsonl")
    p.add_argument("--configs", help="comma-separated subset of dense,sparse,rrf,hybrid,hybrid+rerank")
    p.add_argument("--split", help="only the questions of this split (tune or heldout)")
    p.add_argument("--conversations", metavar="CONV.jsonl", help="follow-up and unrelated question pairs to score")
    p.add_argument("--no-answers", action="store_true", help="score retrieval only, not the answers")
    p.add_argument("--misses", dest="verbose_misses", action="store_true", help="list the questions answered wrongly")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("recover", help="rebuild a damaged or lost catalogue from the stored originals")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_recover)

    p = sub.add_parser("reindex", help="rebuild the index from the stored originals (the old one serves meanwhile)")
    p.add_argument("--collection", help="re-embed only this collection's documents, each switching on its own")
    p.add_argument("--json", action="store_true")
    _add_user_option(p)
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("user", help="accounts: add, list, reset passwords, disable, assign groups (admins)")
    users = p.add_subparsers(dest="command_name", required=True)
    q = users.add_parser("add", help="create an account (a one-time password is printed unless piped in)")
    q.add_argument("name")
    q.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    q.add_argument("--group", action="append", metavar="G", help="a group to join (repeat, or G1,G2)")
    q.add_argument("--admin", action="store_true", help="administers users, collections, documents and the index")
    q.add_argument("--email", help="the e-mail address a single sign-on identity maps to this account")
    q.add_argument("--json", action="store_true")
    _add_user_option(q)
    q.set_defaults(func=cmd_user_add)
    q = users.add_parser("list", help="every account with its groups")
    q.add_argument("--json", action="store_true")
    _add_user_option(q)
    q.set_defaults(func=cmd_user_list)
    q = users.add_parser("passwd", help="reset a password (its browsers are signed out)")
    q.add_argument("name")
    q.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    q.add_argument("--json", action="store_true")
    _add_user_option(q)
    q.set_defaults(func=cmd_user_passwd)
    for verb, text in (("disable", "disable an account (its browsers are signed out)"), ("enable", "enable an account")):
        q = users.add_parser(verb, help=text)
        q.add_argument("name")
        q.add_argument("--json", action="store_true")
        _add_user_option(q)
        q.set_defaults(func=cmd_user_enable)
    q = users.add_parser("groups", help="replace an account's groups")
    q.add_argument("name")
    q.add_argument("--group", action="append", metavar="G", help="a group (repeat, or G1,G2); none: no groups")
    q.add_argument("--json", action="store_true")
    _add_user_option(q)
    q.set_defaults(func=cmd_user_groups)

    p = sub.add_parser("collection", help="collections and the groups that may read and write them (admins)")
    colls = p.add_subparsers(dest="command_name", required=True)
    q = colls.add_parser("create", help="create a collection, or replace its groups")
    q.add_argument("name")
    q.add_argument("--read", action="append", required=True, metavar="G[,G...]", help="groups that may read it")
    q.add_argument("--write", action="append", metavar="G[,G...]", help="groups that may upload and delete")
    q.add_argument("--json", action="store_true")
    _add_user_option(q)
    q.set_defaults(func=cmd_collection_create)
    q = colls.add_parser("list", help="collections with their groups and document counts")
    q.add_argument("--json", action="store_true")
    _add_user_option(q)
    q.set_defaults(func=cmd_collection_list)

    p = sub.add_parser(
        "feedback", help="export ratings of answers as eval questions (admins)",
        description="Every thumbs up or down on an answer, newest first, as lines of `zhiku eval`'s question "
                    "format (question, evidence, file, lang, kind) plus rating, comment, answer, user and at. "
                    "A thumbs-up carries the first citation's quoted words as evidence and its file; a "
                    "thumbs-down has evidence null and file empty: fill in the passage that answers it (and its "
                    "file) before using the line as an eval question, or `zhiku eval` counts it as unanswerable.")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl",
                   help="JSON lines (default), or CSV in UTF-8 with a BOM for Excel")
    p.add_argument("--out", metavar="FILE", help="write to this file (default: standard output)")
    _add_user_option(p)
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("audit", help="the audit log, newest first (admins)")
    p.add_argument("--limit", type=int, default=200, help="entries to show (0: all)")
    p.add_argument("--actor", metavar="NAME", help="only what this account did")
    p.add_argument("--action", help="only this action, e.g. login.failed, upload, delete, denied")
    p.add_argument("--json", action="store_true")
    _add_user_option(p)
    p.set_defaults(func=cmd_audit)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ZhikuError as e:
        print(f"zhiku: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zhiku: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
