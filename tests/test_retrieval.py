"""Hybrid retrieval: backends agree, fusion reaches the other language, scopes and thresholds, concurrent use."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from conftest import SAMPLE, ZHIKU, built_once, run_cli
from zhiku.core.errors import GlossaryError
from zhiku.ingest.chunking import Chunker
from zhiku.ingest.parsers import parse_bytes
from zhiku.retrieval.edge import EdgeIndex
from zhiku.retrieval.index import QdrantIndex, Scope
from zhiku.retrieval.keywords import Text, question_groups
from zhiku.retrieval.rerank import LexicalReranker
from zhiku.retrieval.search import Searcher
from zhiku.retrieval.text import CJK as CJK_WORD, keywords, sparse_document, terms
from zhiku.retrieval.translate import Translator
from zhiku.retrieval.types import LOCAL_ADMIN, Chunk, Hit

QUERIES = [
    "工作满十二年的员工每年有几天年假？",
    "出差住宿报销标准",
    "How many days a week can I work remotely?",
    "What is the minimum password length?",
    "How long is maternity leave?",
    "VPN 密码",
]


@pytest.fixture(scope="module")
def translator():
    return Translator()


@pytest.fixture(scope="module")
def sample_chunks(tmp_path_factory):
    """Chunks of three sample documents (Chinese and English), embedded once a run, with their latent-term
    vectors."""
    from zhiku.retrieval.embeddings import E5Embedder

    embedder = E5Embedder()

    def embed(_directory):
        chunks = []
        for name in ("员工手册.pdf", "Remote_Work_Policy.pdf", "报销制度.md"):
            pieces = Chunker().split(parse_bytes((SAMPLE / name).read_bytes(), name))
            chunks += [Chunk(f"doc-{name}", name, "default", i, p.text, p.page, p.heading, (p.start, p.end),
                             chunk_count=len(pieces)) for i, p in enumerate(pieces)]
        texts = [c.text for c in chunks]
        return chunks, embedder.embed_passages(texts), [sparse_document(t) for t in texts], embedder.latent(texts)

    _, (chunks, dense, sparse, latent) = built_once(tmp_path_factory, "sample-chunks", embed)
    return embedder, chunks, dense, sparse, latent


def _fill(index, sample_chunks):
    embedder, chunks, dense, sparse, latent = sample_chunks
    index.ensure(embedder.dim, embedder.name)
    index.upsert(chunks, dense, sparse, None, latent)
    return index


def _ranking(hits) -> list[tuple[float, frozenset]]:
    """Scores in order, with the passages at each score; hits with equal fused scores may come in either order."""
    groups: dict[float, set] = {}
    for h in hits:
        groups.setdefault(round(h.score, 3), set()).add((h.chunk.file_name, h.chunk.chunk_index))
    return [(score, frozenset(ids)) for score, ids in groups.items()]


def test_backends_return_the_same_results(tmp_path, sample_chunks, translator):
    embedder = sample_chunks[0]
    edge = _fill(EdgeIndex(tmp_path / "edge"), sample_chunks)
    local = _fill(QdrantIndex("zhiku", path=tmp_path / "qdrant"), sample_chunks)
    try:
        assert edge.count(Scope()) == local.count(Scope()) == len(sample_chunks[1])
        for mode in ("dense", "sparse", "hybrid"):
            for query in QUERIES:
                a = Searcher(edge, embedder, translator=translator).search(query, LOCAL_ADMIN, k=5, mode=mode)
                b = Searcher(local, embedder, translator=translator).search(query, LOCAL_ADMIN, k=5, mode=mode)
                if mode == "hybrid":
                    # the ranker reads the whole fused pool, whose last places may differ on equal fused
                    # scores: the same passages in the same order, scores within a small tolerance
                    assert [(h.chunk.file_name, h.chunk.chunk_index) for h in a[:4]] == \
                        [(h.chunk.file_name, h.chunk.chunk_index) for h in b[:4]], query
                    assert all(abs(x.score - y.score) < 0.05 for x, y in zip(a, b)), query
                    continue
                # a tie across the k-th place may cut either way: the last group is compared by score only
                ra, rb = _ranking(a), _ranking(b)
                assert ra[:-1] == rb[:-1] and ra[-1][0] == rb[-1][0], (mode, query)
    finally:
        edge.close()
        local.close()


def test_english_question_reaches_chinese_document(tmp_path, sample_chunks, translator):
    embedder = sample_chunks[0]
    index = _fill(EdgeIndex(tmp_path / "edge"), sample_chunks)
    try:
        assert "产假" in translator.expand("How long is maternity leave?")
        searcher = Searcher(index, embedder, translator=translator)
        hits = searcher.search("How long is maternity leave?", LOCAL_ADMIN, k=5)
        assert any("产假" in h.chunk.text for h in hits)
        # without the cross-language list and the dictionary, English passages crowd it out
        from zhiku.retrieval.index import Fusion

        plain = Searcher(index, embedder, fusion=Fusion(cross_language=False), learned=False)
        assert not any("产假" in h.chunk.text for h in plain.search("How long is maternity leave?", LOCAL_ADMIN, k=5))
        # the learned ranker puts it first
        assert "产假" in searcher.search("How long is maternity leave?", LOCAL_ADMIN, k=5)[0].chunk.text
    finally:
        index.close()


@pytest.mark.parametrize("backend", ["edge", "qdrant-local"])
def test_the_gate_knows_which_words_the_readable_documents_use(tmp_path, sample_chunks, translator, backend):
    """A question in words no readable passage uses is refused however its best passage scores; a question
    in the other language whose translated words the documents use is answered."""
    from zhiku.retrieval.keywords import Text, question_groups

    embedder = sample_chunks[0]
    index = _fill(EdgeIndex(tmp_path / "edge") if backend == "edge" else QdrantIndex("zhiku", path=tmp_path / "local"),
                  sample_chunks)
    try:
        searcher = Searcher(index, embedder, translator=translator)

        def known(question, scope=Scope()):
            return searcher.known(question_groups(question, translator), scope)

        assert known("How long is maternity leave?") == 1.0  # 产假, through the dictionary
        assert known("What is the capital of France?") == 0.0
        assert 0.0 < known("明天北京的天气怎么样？") < 0.5  # 北京 is a hotel-limit row; the weather is nowhere
        # only what the scope lets the user read counts: 婚假 is in the handbook, not in the remote-work policy
        assert known("婚假有几天？") == 1.0
        assert known("婚假有几天？", Scope(doc_ids=["doc-Remote_Work_Policy.pdf"])) == 0.0
        assert searcher.relevant(searcher.search("How long is maternity leave?", LOCAL_ADMIN, k=5))
        assert searcher.relevant(searcher.search("What is the capital of France?", LOCAL_ADMIN, k=5)) == []
        assert searcher.relevant(searcher.search("明天北京的天气怎么样？", LOCAL_ADMIN, k=5)) == []
    finally:
        index.close()


@pytest.mark.parametrize("backend", ["edge", "qdrant-local"])
def test_the_dictionary_prefers_the_words_the_readable_documents_use(tmp_path, sample_chunks, translator, backend):
    """协同 is first to cooperate or coordination in the dictionary, but the English policy says collaboration:
    a Chinese question's keyword search looks for the word the documents use, within what the user may read
    (密码, a cipher first in the dictionary, is now a password through the workplace glossary)."""
    embedder = sample_chunks[0]
    index = _fill(EdgeIndex(tmp_path / "edge") if backend == "edge" else QdrantIndex("zhiku", path=tmp_path / "local"),
                  sample_chunks)
    question = "团队协同怎么做？"
    try:
        searcher = Searcher(index, embedder, translator=translator)
        plain = dict(translator.expand_groups(question))
        assert "collaboration" not in plain["协同"]
        assert dict(searcher.translator_for(Scope()).expand_groups(question))["协同"][0] == "collaboration"
        # the reimbursement rules never say collaboration: read against them, the dictionary's order stands
        assert dict(searcher.translator_for(Scope(doc_ids=["doc-报销制度.md"])).expand_groups(question)) == plain
        # English to Chinese too: paid leave is 带薪 in the handbook, not 有偿 (paid for)
        assert "带薪" not in dict(translator.expand_groups("Is sick leave paid?"))["paid"]
        assert dict(searcher.translator_for(Scope()).expand_groups("Is sick leave paid?"))["paid"][0] == "带薪"
        # the keyword list now reaches the English policy's collaboration passage
        hits = searcher.search(question, LOCAL_ADMIN, k=30, mode="sparse")
        assert any(h.chunk.file_name == "Remote_Work_Policy.pdf" and "collaboration" in h.chunk.text for h in hits)
    finally:
        index.close()


def test_dictionary_verbs_are_found_without_their_to(translator):
    """CC-CEDICT writes verbs as "to resign", often as a second sense or after a note in brackets ("(of an
    employee) to clock on (or off)"): an English question's verb must still find the Chinese word."""
    handbook = translator.within(lambda words: {"离职"} & set(words))  # a knowledge base using the word
    assert dict(handbook.expand_groups("Do I have to resign in writing?"))["resign"][0] == "离职"
    assert "resign" in translator.senses("离职")
    assert "clock on" in translator.senses("打卡")


def test_a_glossary_term_is_also_looked_for_as_the_terms_of_its_sense_the_knowledge_base_uses(translator):
    """Employees ask in everyday words (打车, 报账) where the policy writes 出租车 and 报销: a Chinese keyword
    is matched through the glossary terms of its usual sense that some passage uses, and through no
    dictionary sense (作为 is "as" in a question, not 行为, an act)."""
    policy = translator.within(lambda words: {"出租车", "网约车", "报销", "行为"} & set(words))
    found = dict(policy.expand_groups("打车报账除了发票还要交什么？", senses=8))
    assert found["打车"][-2:] == ["出租车", "网约车"] and found["报账"][-1] == "报销"
    assert not any("行为" in words for words in policy.expand_groups("我作为新员工要做什么？", senses=8))
    # only words some passage uses, and a keyword search finds the passage that never says 打车
    nothing = translator.within(lambda words: set())
    assert not any(CJK_WORD.search(w) for _, words in nothing.expand_groups("打车报账", senses=8) for w in words)
    assert "出租车" in policy.expand("打车报账")
    (taxi,) = [g for g in question_groups("打车报账除了发票还要交什么？", policy) if g.text == "打车"]
    assert Text("乘坐出租车或网约车的，须同时提供发票和行程单。").matches(taxi)
    # 到账 (money arrives) is paid out: a salary is 发放, an expense claim 付款
    payroll = translator.within(lambda words: {"发放", "付款"} & set(words))
    (arrives,) = [g for g in question_groups("报销多久到账？", payroll) if g.text == "到账"]
    assert Text("报销单审核通过后，财务部在每周二和周五统一付款。").matches(arrives)
    assert Text("公司每月 10 日发放上一个自然月的工资。").matches(arrives)


def test_an_acronym_that_leads_a_dictionary_name_is_a_sense_of_its_own(translator):
    """CC-CEDICT reads U盘 as "USB flash drive", a phrase an English policy never writes ("USB storage
    devices are blocked"): the acronym alone is also a sense, so the keyword matches the policy."""
    assert translator.senses("u盘")[:2] == ["usb flash drive", "usb"] and "qr" in translator.senses("二维码")
    (stick,) = [g for g in question_groups("能用U盘拷文件吗？", translator) if g.text == "u盘"]
    assert Text("USB storage devices are blocked on company laptops.").matches(stick)
    assert not Text("Portable storage devices are blocked on company laptops.").matches(stick)


def test_chinese_words_the_dictionary_lacks_are_read_by_their_parts(translator):
    """The segmenter keeps 安全意识 whole, the dictionary only knows its parts: a Chinese question about an
    English policy must still reach "safe" and "awareness", and the word stays one keyword (its parts take
    turns among its senses)."""
    found = dict(translator.expand_groups("新员工要在多少天内完成安全意识课程？", senses=8))
    assert "awareness" in found["安全意识"] and "safe" in found["安全意识"]
    # the dictionary knows 安全 whole, not 安全意识: the relevance gate does not count a word as one the
    # knowledge base uses because its parts are common words
    assert translator.knows("安全") and not translator.knows("安全意识")
    # of overlapping parts the later one, the compound's head: 开发票 is issuing an invoice, not developing
    assert translator._known_parts("开发票") == ["发票"]
    # numbers are the quantity parser's: 二十五年 is not read as 二十 and 十五
    assert "二十五年" not in dict(translator.expand_groups("工龄二十五年的老员工年假有多少天？", senses=8))
    # a word the dictionary knows stays as it is
    assert list(dict(translator.expand_groups("住房公积金缴存比例是多少？"))) == ["住房", "公积金", "比例"]
    # relative time words name no topic: 今年 is no "year" to look for in an English policy
    assert dict(translator.expand_groups("今年春节是几月几号？", senses=8)) == {"今年春节": ["spring festival"]}


def test_the_glossary_reads_workplace_terms_the_dictionary_lacks_or_reads_otherwise(translator):
    """CC-CEDICT's "probation" is a court's 缓刑, and it has no 在家办公 or 餐补: the workplace glossary comes
    first in both directions, and its terms stay one keyword however the segmenter cuts them."""
    assert dict(translator.expand_groups("How long is the probation period?")) == {"probation period": ["试用期"]}
    assert dict(translator.expand_groups("Is my salary reduced during probation?"))["probation"][0] == "试用期"
    assert translator.senses("试用期")[0] == "probation"
    # jieba cuts 在家办公 into 在家 + 办公 and 还发餐补 into 还 + 发餐 + 补
    found = dict(translator.expand_groups("每周最多可以在家办公几天？", senses=8))
    assert "work from home" in found["在家办公"] and "在家" not in found
    groups = {g.text: g for g in question_groups("远程办公的日子还发餐补吗？", translator)}
    assert "发餐" not in groups and groups["餐补"].options[0] == ("餐补",)  # a passage says 发放餐补
    # a term across two words the dictionary knows is no match: 增加密码 holds 加密 (encrypt), 个人事假 人事 (HR)
    assert [w for w, _ in translator.expand_groups("增加密码的长度有要求吗？")] == ["增加", "密码", "长度", "要求"]
    assert "事假" in dict(translator.expand_groups("个人事假怎么请？")) and "encrypt" not in translator.gloss("增加密码长度")
    # an English question reads a Chinese passage through the glossary too
    assert {"meal allowance", "remote work"} <= translator.gloss("员工居家办公的日子照常发放餐补。")
    # a handbook's words for what employees say in English: HQ, a referral bonus, a cash advance (借款, which
    # the dictionary reads only as a loan)
    assert dict(translator.expand_groups("What's the address of our Hangzhou HQ?"))["hq"] == ["总部"]
    assert dict(translator.expand_groups("What's the referral bonus?"))["referral bonus"] == ["内推奖金"]
    assert "借款" in dict(translator.expand_groups("Can I get a cash advance before a trip?"))["cash advance"]


def test_a_word_that_begins_in_latin_letters_is_one_keyword_however_it_is_typed(translator):
    """U盘, IP地址, SIM卡: split where the script changes, "u" and "盘" mean nothing, and the dictionary's
    USB flash drive was never looked up."""
    for question in ("可以用U盘拷文件吗？", "可以用u盘拷文件吗？"):
        assert keywords(question) == ["用", "u盘", "拷", "文件"]
        assert "usb flash drive" in dict(translator.expand_groups(question, senses=8))["u盘"]
    assert "u盘" in terms("禁止使用U盘") and "ip地址" in terms("电脑的IP地址")
    # its parts stay terms too, so a passage indexed before still meets it; an English word is untouched
    assert {"u", "盘"} <= set(terms("U盘")) and terms("VIP customers") == ["vip", "customer"]
    assert {"usb", "flash", "drive"} <= translator.gloss("不得使用U盘")


def test_a_company_glossary_comes_before_the_built_in_one(tmp_path):
    """A company's own jargon (ZHIKU_GLOSSARY): its terms are found in both directions, its senses of a term
    the built-in glossary has too come first, and a file that cannot be read stops the start with the fix."""
    path = tmp_path / "glossary.tsv"
    # saved with a byte-order mark, as some Windows editors do
    path.write_text("费控系统\tspendly; expense system\n试用期\ttrial period\n", encoding="utf-8-sig")
    translator = Translator(path)
    assert dict(translator.expand_groups("费控系统怎么登录？", senses=8))["费控系统"][0] == "spendly"
    assert dict(translator.expand_groups("How do I log in to Spendly?"))["spendly"] == ["费控系统"]
    assert translator.senses("试用期")[:2] == ["trial period", "probation"]
    assert "spendly" not in Translator().gloss("请在费控系统提交")  # only where the company says so
    bad = tmp_path / "bad.tsv"
    bad.write_text("# ok\n费控系统 spendly\n", encoding="utf-8")
    with pytest.raises(GlossaryError, match=r"bad.tsv, line 2: .* a tab"):
        Translator(bad)
    with pytest.raises(GlossaryError, match="does not exist: point ZHIKU_GLOSSARY"):
        Translator(tmp_path / "missing.tsv")
    bad.write_bytes("费控系统\tspendly".encode("gbk"))
    with pytest.raises(GlossaryError, match="not UTF-8"):
        Translator(bad)


def test_the_dictionary_tables_kept_between_processes_are_the_ones_built_and_a_damaged_copy_is_rebuilt(
        tmp_path, monkeypatch):
    from zhiku.retrieval import translate

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(translate, "_tables", None)  # as in a new process
    path = translate._cache_path()
    assert path.parent == tmp_path / "cache" / "zhiku" and not path.exists()
    built = translate.dictionary_tables()  # built from CC-CEDICT, then kept
    assert path.exists() and not list(path.parent.glob(".*.part"))
    kept = translate._read_cached(path)
    assert kept == built and len(kept.zh_to_en) > 50_000
    assert "password" in kept.zh_to_en["密码"] and "password" in kept.zh_stems["密码"]
    # a later process reads the kept tables, and a translator over them reads questions as before
    monkeypatch.setattr(translate, "_tables", None)
    monkeypatch.setattr(translate, "_build_tables", lambda: pytest.fail("the kept tables were not used"))
    assert dict(Translator().expand_groups("How long is maternity leave?"))["maternity leave"] == ["产假"]
    # a damaged copy is built again and replaced
    path.write_bytes(b"\x00not the tables")
    assert translate._read_cached(path) is None
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(translate, "_tables", None)
    assert translate.dictionary_tables() == built and translate._read_cached(path) == built


@pytest.mark.parametrize("question, wanted", [
    ("How long is the probation period?", "试用期为三个月"),
    ("每周最多可以在家办公几天？", "3 days per week"),
])
def test_a_question_in_workplace_words_reaches_the_other_language(tmp_path, sample_chunks, translator, question, wanted):
    """The English policy says "remote" and "per week", the Chinese handbook 试用期: without the glossary a
    passage in the question's own language that shares a common word came first."""
    embedder = sample_chunks[0]
    index = _fill(EdgeIndex(tmp_path / "edge"), sample_chunks)
    try:
        hits = Searcher(index, embedder, translator=translator).search(question, LOCAL_ADMIN, k=5)
        assert wanted in hits[0].chunk.text, [h.chunk.text[:60] for h in hits]
    finally:
        index.close()


def test_scope_filters_inside_the_query(tmp_path, sample_chunks):
    embedder = sample_chunks[0]
    index = _fill(EdgeIndex(tmp_path / "edge"), sample_chunks)
    try:
        searcher = Searcher(index, embedder)
        only = searcher.search("年假", LOCAL_ADMIN, k=5, collections=["default"])
        assert only
        assert searcher.search("年假", LOCAL_ADMIN, k=5, collections=["elsewhere"]) == []
        scoped = index.query(embedder.embed_query("年假"), None, Scope(doc_ids=["doc-报销制度.md"]), 5)
        assert scoped and {h.chunk.file_name for h in scoped} == {"报销制度.md"}
        assert index.count(Scope(first_chunk_only=True)) == 3
    finally:
        index.close()


def test_reranker_reorders_a_deeper_candidate_list(tmp_path, sample_chunks):
    embedder = sample_chunks[0]
    index = _fill(EdgeIndex(tmp_path / "edge"), sample_chunks)
    try:
        searcher = Searcher(index, embedder, reranker=LexicalReranker())
        hits = searcher.search("password minimum length", LOCAL_ADMIN, k=3)
        assert [h.rank for h in hits] == [1, 2, 3]
        assert all(h.fused_score is not None for h in hits)
        plain = searcher.search("password minimum length", LOCAL_ADMIN, k=3, rerank=False, ranked=False)
        assert all(h.fused_score is None for h in plain)
    finally:
        index.close()


def test_eval_reports_every_configuration(sample_kb, tmp_path):
    env = {"ZHIKU_DATA_DIR": str(sample_kb.settings.data_dir)}
    qa = tmp_path / "qa.jsonl"
    lines = [
        {"question": "工作满十二年的员工每年有几天年假？", "evidence": "年假为 15 天", "kind": "zh"},
        {"question": "How many days a week may I work remotely?", "evidence": "up to 3 days per week", "kind": "en"},
        {"question": "How long is maternity leave?", "evidence": "产假为 158 天", "kind": "en-about-zh"},
        {"question": "What is the capital of Australia?", "evidence": None},
    ]
    qa.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    result = run_cli("eval", str(qa), "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["configurations"]) == {"dense", "sparse", "rrf", "hybrid", "hybrid+rerank"}
    hybrid = report["configurations"]["hybrid"]["all"]
    assert set(hybrid) >= {"hit@1", "hit@5", "mrr", "ndcg@10"} and hybrid["questions"] == 3
    assert hybrid["hit@5"] == 1.0
    gate = report["threshold"]
    assert (gate["answerable"], gate["unanswerable"], gate["unanswerable_refused"]) == (3, 1, 1)
    assert gate["answerable_kept"] >= 2
    text = run_cli("eval", str(qa), "--configs", "sparse", env=env)
    assert text.returncode == 0 and "sparse" in text.stdout and "MRR" in text.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": 1}\n', encoding="utf-8")
    failed = run_cli("eval", str(bad), env=env)
    assert failed.returncode == 2 and "question" in failed.stderr


def test_web_app_and_cli_share_the_embedded_index(make_services, tmp_path):
    services = make_services()  # stands in for the running web app, holding the index open
    (tmp_path / "a.md").write_text("# Parking\n\nVisitor parking is on level B2.", encoding="utf-8")
    services.ingestor.ingest_paths([tmp_path / "a.md"], "default", LOCAL_ADMIN)
    env = {"ZHIKU_DATA_DIR": str(services.settings.data_dir)}
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"n{i}.md").write_text(f"# Note {i}\n\n" + "The canteen opens at noon. " * 60, encoding="utf-8")
    ingest = subprocess.Popen([str(ZHIKU), "ingest", str(docs), "--json"], env={**__import__("os").environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the "web app" keeps answering while the CLI writes
    deadline = time.time() + 120
    while ingest.poll() is None and time.time() < deadline:
        assert services.searcher.search("visitor parking", LOCAL_ADMIN, k=1)[0].chunk.file_name == "a.md"
        time.sleep(0.2)
    out, err = ingest.communicate(timeout=120)
    assert ingest.returncode == 0, err
    assert all(f["status"] == "added" for f in json.loads(out)["files"])
    stats = run_cli("stats", "--json", env=env)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["documents"] == 7
    assert services.ingestor.stats(LOCAL_ADMIN).documents == 7


def test_the_ranker_does_not_inherit_the_order_of_tied_fused_scores():
    import numpy as np

    from zhiku.retrieval.ranker import FEATURES, Query, features

    hits = [Hit(Chunk("d", "a.md", "default", i, text), score, i + 1)
            for i, (text, score) in enumerate([("年假 规定 第一条。", 0.2), ("病假 规定 第二条。", 0.2), ("其他 内容。", 0.1)])]
    query = Query("年假规定", np.zeros(4, dtype=np.float32), [], [])
    fused = features(query, hits)[:, FEATURES.index("fused")]
    # the engine may return the two tied passages either way round: both get the better place
    assert fused[0] == fused[1] == 1.0 and fused[2] == 1.0 / 3


def test_the_ranker_knows_which_passage_states_the_kind_of_value_asked_for():
    import numpy as np

    from zhiku.retrieval.keywords import Text, question_groups
    from zhiku.retrieval.ranker import FEATURES, WEIGHTS, Query, features

    texts = ["审批人按单笔金额审批报销单：2000 元及以下由直属上级审批。",
             "审批人应在收到报销单后 3 个工作日内完成审批。"]
    hits = [Hit(Chunk("d", "a.md", "default", i, t), 0.5, i + 1) for i, t in enumerate(texts)]
    column = FEATURES.index("typed")

    def typed(question: str):
        return features(Query(question, np.zeros(4, dtype=np.float32), question_groups(question), []), hits)[:, column]

    how_long = typed("审批人要在多长时间内审批报销单？")
    assert how_long[0] == 0.0 < how_long[1]  # how long: the duration, not the amount
    assert not typed("谁来审批报销单？").any()  # who: no kind of value
    assert WEIGHTS["typed"] > 0
