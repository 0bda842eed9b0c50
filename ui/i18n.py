"""The interface's words in Chinese and English: the browser's language by default, a switch in the sidebar.

Every label, message and error the page itself writes comes from STRINGS. Text from documents, models and
error messages of the services is shown as it is (through ui/safe.py).
"""

from __future__ import annotations

import time

import streamlit as st

LANGUAGES = ("zh", "en")
NAMES = {"zh": "中文", "en": "English"}

# key: (English, Chinese)
STRINGS: dict[str, tuple[str, str]] = {
    # page and navigation
    "loading": ("Loading the knowledge base…", "正在加载知识库…"),
    "nav.chat": ("Chat", "问答"),
    "nav.documents": ("Documents", "文档"),
    "nav.admin": ("Administration", "管理"),
    "language": ("Language", "语言"),
    "signed_in_as": ("Signed in as **{name}** ({role})", "当前用户 **{name}**（{role}）"),
    "role.admin": ("admin", "管理员"),
    "role.member": ("member", "成员"),
    "logout": ("Log out", "退出登录"),
    "sign_in_first": ("Please sign in.", "请先登录。"),
    "sign_in": ("Sign in", "登录"),
    "error.unexpected": ("Something went wrong on this page: {error}. Reload the page; if it happens again, "
                         "tell an admin (the server log has the details).",
                         "页面出错：{error}。请刷新页面；如果再次出现，请联系管理员（服务器日志中有详细信息）。"),
    # mode and health in the sidebar
    "mode.ollama": ("Answers written by Ollama · {model}", "由 Ollama 撰写回答 · {model}"),
    "mode.extractive": ("Extractive answers: quoted passages with citations. Set OLLAMA_HOST for written answers.",
                        "摘录式回答：引用原文并注明出处。设置 OLLAMA_HOST 后由本地模型撰写回答。"),
    "counts": ("{docs} documents · {chunks} passages · {backend}", "{docs} 篇文档 · {chunks} 个段落 · {backend}"),
    "backend.server": ("Qdrant server", "Qdrant 服务器"),
    "backend.embedded": ("embedded index", "内置索引"),
    # conversations
    "new_chat": ("New chat", "新对话"),
    "conversations": ("Conversations", "历史对话"),
    "untitled": ("New chat", "新对话"),
    "rename": ("Rename", "重命名"),
    "delete": ("Delete", "删除"),
    "save": ("Save", "保存"),
    "cancel": ("Cancel", "取消"),
    "title_label": ("Title", "标题"),
    "delete_chat_confirm": ("Delete the conversation “{title}” and its answers?", "删除对话“{title}”及其全部回答？"),
    "chat_options": ("Options of this conversation", "对话选项"),
    # chat
    "placeholder": ("Ask a question in Chinese or English", "用中文或英文提问"),
    "welcome": ("### Ask the company knowledge base", "### 向企业知识库提问"),
    "welcome.caption": ("Answers cite the file, page and passage they come from.",
                        "每个回答都注明出处：文件、页码和原文段落。"),
    "search_in": ("Search in", "搜索范围"),
    "search_in.help": ("Collections this conversation searches (empty: every collection you may read).",
                       "本对话搜索的知识库（留空：所有可读知识库）。"),
    "stop": ("Stop", "停止"),
    "stopped": ("Stopped before the answer was complete.", "回答未完成，已停止。"),
    "sources": ("Sources", "来源"),
    "page": ("p. {page}", "第 {page} 页"),
    "view_page": ("View page", "查看原页"),
    "download": ("Download original", "下载原文件"),
    "section": ("Section of the document", "文档中的段落"),
    "no_preview": ("This page cannot be shown: {error}", "无法显示此页：{error}"),
    "copy": ("Copy", "复制"),
    "copy.help": ("The answer as text: use the copy icon at its top right.", "回答的文本：点击右上角的复制图标。"),
    "feedback.comment": ("Comment (optional)", "意见（可选）"),
    "feedback.send": ("Send", "提交"),
    "feedback.thanks": ("Thank you, your feedback is saved.", "谢谢，反馈已保存。"),
    # first run and empty states
    "first_run": ("**zhiku** answers questions from your company's documents, in Chinese or English, and every "
                  "answer cites the file, page and passage it comes from. Everything stays on this server.",
                  "**知库**根据公司文档回答中英文问题，每个回答都注明出处（文件、页码、原文段落）。所有数据都留在本服务器上。"),
    "first_run.steps": ("1. Upload documents in the sidebar (PDF, Word, PowerPoint, Excel, Markdown, …), or load "
                        "the sample handbook.\n2. Ask a question below.\n3. Open a source to see the page it "
                        "comes from.",
                        "1. 在侧栏上传文档（PDF、Word、PowerPoint、Excel、Markdown 等），或加载示例员工手册。\n"
                        "2. 在下方提问。\n3. 打开来源，查看原文所在页面。"),
    "empty_kb": ("The knowledge base is empty: nothing has been indexed yet.", "知识库为空：尚未索引任何文档。"),
    "empty_kb.member": ("There are no documents you may read yet. Ask an admin to give your group access to a "
                        "collection, or upload documents where you may write.",
                        "目前没有您可读的文档。请联系管理员为您的用户组开放知识库，或在可写的知识库中上传文档。"),
    "load_sample": ("Load the sample handbook", "加载示例员工手册"),
    # uploads
    "upload": ("Upload documents", "上传文档"),
    "upload.collection": ("Collection", "知识库"),
    "upload.new_collection": ("New collection name", "新知识库名称"),
    "upload.new": ("➕ new collection…", "➕ 新建知识库…"),
    "upload.files": ("Files: {types}; up to {mb} MB each", "文件：{types}；每个最大 {mb} MB"),
    "upload.go": ("Index these files", "索引这些文件"),
    "upload.dismiss": ("Dismiss finished", "清除已完成"),
    "stage.queued": ("queued", "排队中"),
    "stage.parsing": ("parsing", "解析中"),
    "stage.embedding": ("embedding", "向量化中"),
    "stage.cleanup": ("finishing", "收尾中"),
    "stage.building": ("building", "构建中"),
    "stage.indexed": ("indexed", "已索引"),
    "stage.unchanged": ("unchanged", "未变化"),
    "stage.reindexed": ("re-indexed", "已重建"),
    "stage.deleted": ("deleted", "已删除"),
    "stage.failed": ("failed", "失败"),
    # documents
    "docs.title": ("### Documents", "### 文档"),
    "docs.search": ("Search by name or path", "按名称或路径搜索"),
    "docs.collections": ("Collections", "知识库"),
    "docs.status": ("Status", "状态"),
    "docs.none": ("No documents match.", "没有符合条件的文档。"),
    "docs.selected": ("{n} selected", "已选 {n} 篇"),
    "docs.delete": ("Delete selected", "删除所选"),
    "docs.delete_confirm": ("Delete these {n} documents? Their passages leave the index and answers; this cannot be "
                            "undone.", "删除这 {n} 篇文档？其段落将从索引和回答中移除，且无法恢复。"),
    "docs.delete_denied": ("You may not delete from {collections}: ask an admin or a writer of that collection.",
                           "您无权删除 {collections} 中的文档：请联系管理员或该知识库的编辑者。"),
    "docs.deleted": ("Deleting {n} documents.", "正在删除 {n} 篇文档。"),
    "col.name": ("Name", "名称"),
    "col.collection": ("Collection", "知识库"),
    "col.pages": ("Pages", "页数"),
    "col.chunks": ("Passages", "段落"),
    "col.size": ("Size (KB)", "大小 (KB)"),
    "col.ingested_at": ("Indexed at", "索引时间"),
    "col.by": ("By", "上传者"),
    "col.status": ("Status", "状态"),
    "col.error": ("Problem", "问题"),
    "status.indexed": ("indexed", "已索引"),
    "status.queued": ("queued", "排队中"),
    "status.failed": ("failed", "失败"),
    "status.deleting": ("deleting", "删除中"),
    # admin
    "admin.title": ("### Administration", "### 管理"),
    "tab.users": ("Users", "用户"),
    "tab.collections": ("Collections", "知识库"),
    "tab.feedback": ("Feedback", "反馈"),
    "tab.audit": ("Audit log", "审计日志"),
    "reindex": ("Re-index", "重建索引"),
    "reindex.help": ("Every collection: a new index generation is built from the stored originals while the "
                     "current one answers; it is swapped in when complete. One collection: each document is "
                     "re-embedded and switches on its own.",
                     "全部知识库：用已存储的原文件构建新一代索引，期间由当前索引回答问题，完成后才切换。"
                     "单个知识库：逐篇重新向量化，每篇完成后各自切换。"),
    "reindex.every": ("Every collection (new index generation)", "全部知识库（新一代索引）"),
    "reindex.go": ("Start re-index", "开始重建索引"),
    "reindex.kept": ("{n} documents kept their previous version: {error}", "{n} 篇文档保留原版本：{error}"),
    "reindex.collection_done": ("Re-indexed {n} documents.", "已重建 {n} 篇文档。"),
    "reindex.queued": ("Re-index queued: the current index answers questions meanwhile.",
                       "已排队重建索引：期间由当前索引回答问题。"),
    "reindex.running": ("Re-indexing: {done} of {total} documents", "正在重建索引：{done}/{total} 篇文档"),
    "reindex.done": ("Re-index finished {when}: the new index serves.", "重建索引已于 {when} 完成，新索引已启用。"),
    "reindex.failed": ("Re-index failed, the previous index keeps serving: {error}",
                       "重建索引失败，继续使用原索引：{error}"),
    "health": ("Health", "运行状态"),
    "health.again": ("Check again", "重新检查"),
    "health.index": ("Index", "索引"),
    "health.llm": ("Ollama", "Ollama"),
    "health.reranker": ("Reranker", "重排序"),
    "health.embedder": ("Embedding model", "向量模型"),
    "health.worker": ("Job worker", "任务处理"),
    "health.store": ("App store", "应用数据库"),
    "health.index.ok": ("{backend} · {where} · {chunks} passages", "{backend} · {where} · {chunks} 个段落"),
    "health.llm.ok": ("{host} · model {model} present", "{host} · 模型 {model} 已就绪"),
    "health.llm.off": ("not configured: extractive answers (set OLLAMA_HOST for written answers)",
                       "未配置：摘录式回答（设置 OLLAMA_HOST 后由本地模型撰写回答）"),
    "health.reranker.ok": ("{reranker}", "{reranker}"),
    "health.reranker.off": ("none: the learned ranker orders the passages (ZHIKU_RERANKER)",
                            "未启用：由学习排序模型决定段落顺序（ZHIKU_RERANKER）"),
    "health.embedder.ok": ("{model} · {dim} dimensions · {ms} ms", "{model} · {dim} 维 · {ms} 毫秒"),
    "health.worker.ok": ("running · {queued} queued, {running} running", "运行中 · {queued} 个排队，{running} 个进行中"),
    "health.worker.down": ("stopped: {queued} queued jobs wait until the app restarts",
                           "已停止：{queued} 个排队任务将等待应用重启"),
    "health.store.ok": ("{dialect} · {documents} documents, {chunks} passages", "{dialect} · {documents} 篇文档，{chunks} 个段落"),
    "feedback.export": ("Feedback as evaluation questions ({n})", "反馈导出为评测问题（{n} 条）"),
    "feedback.none": ("No feedback yet.", "尚无反馈。"),
    "export.csv": ("Export CSV", "导出 CSV"),
    "export.jsonl": ("Export JSON lines", "导出 JSON lines"),
    "users.add": ("**Add a user**", "**添加用户**"),
    "users.name": ("Name", "用户名"),
    "users.groups": ("Groups (comma-separated)", "用户组（逗号分隔）"),
    "users.password": ("Password (empty: generate one)", "密码（留空则自动生成）"),
    "users.admin": ("Admin", "管理员"),
    "users.add_button": ("Add", "添加"),
    "users.change": ("**Change a user**", "**修改用户**"),
    "users.user": ("User", "用户"),
    "users.new_groups": ("New groups (comma-separated)", "新用户组（逗号分隔）"),
    "users.action": ("Action", "操作"),
    "users.apply": ("Apply", "应用"),
    "users.created": ("Created {name}.", "已创建 {name}。"),
    "users.new_password": ("New password for {name}.", "已为 {name} 设置新密码。"),
    "users.one_time": ("One-time password, shown only now:", "一次性密码（仅显示一次）："),
    "action.set_groups": ("set groups", "设置用户组"),
    "action.reset_password": ("reset password", "重置密码"),
    "action.disable": ("disable", "停用"),
    "action.enable": ("enable", "启用"),
    "collections.edit": ("**Create a collection, or change its groups**", "**创建知识库或修改权限**"),
    "collections.name": ("Collection", "知识库"),
    "collections.read": ("Read groups", "可读用户组"),
    "collections.write": ("Write groups", "可写用户组"),
}


def language() -> str:
    """This browser's interface language: the switch (kept in the URL) or else the browser's own."""
    chosen = st.query_params.get("lang")
    if chosen in LANGUAGES:
        return chosen
    locale = (st.context.locale or "") if hasattr(st.context, "locale") else ""
    return "zh" if locale.lower().startswith("zh") else "en"


def t(key: str, **values) -> str:
    """The text of key in this browser's language, with {values} filled in."""
    english, chinese = STRINGS[key]
    text = chinese if language() == "zh" else english
    return text.format(**values) if values else text


def when(stamp: float | None, seconds: bool = False) -> str:
    """A time of the server's clock as the tables show it ("" for none)."""
    if not stamp:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M", time.localtime(stamp))


def switch() -> None:
    """The language switch (sidebar); the choice stays in the URL, so a reload keeps it."""
    current = language()
    picked = st.segmented_control(t("language"), LANGUAGES, default=current, format_func=NAMES.get,
                                  key="language-switch", label_visibility="collapsed")
    if picked and picked != current:
        st.query_params["lang"] = picked
        st.rerun()
