"""Build zhiku's sample corpus: a fictional company handbook for Lanting Technology (兰亭科技).

Run from the repository root:

    python data/build_sample.py            # (re)build data/sample/
    python data/build_sample.py --check    # rebuild, then verify data/eval/*.jsonl

Files written to ``data/sample/`` (beside this script):

* ``员工手册.pdf``             Chinese employee handbook, one topic per page (reportlab, STSong-Light)
* ``IT_Security_Policy.docx``  English IT security policy with headings and a table (python-docx)
* ``onboarding.md``            English onboarding guide (Markdown)
* ``报销制度.md``               Chinese expense reimbursement rules (Markdown)
* ``Remote_Work_Policy.pdf``   English remote work policy, three pages (reportlab, Helvetica)

The facts in the documents are mutually consistent and each is stated in one place, so every
question in ``data/eval/sample_qa.jsonl`` has one unambiguous answer.  Output is deterministic:
PDFs are written with reportlab's ``invariant`` mode and the DOCX gets fixed core properties and
fixed zip timestamps, so rebuilding produces byte-identical files.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import io
import json
import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "sample"
QA_PATH = HERE / "eval" / "sample_qa.jsonl"
CONVERSATIONS_PATH = HERE / "eval" / "conversations.jsonl"
SPLITS = ("tune", "heldout")  # thresholds and the ranker are tuned on "tune" only

FIXED_DATE = dt.datetime(2024, 3, 1, 9, 0, 0)
FIXED_ZIP_TIME = (2024, 3, 1, 9, 0, 0)
AUTHOR = "Lanting Technology / 兰亭科技"

HANDBOOK_PDF = "员工手册.pdf"
SECURITY_DOCX = "IT_Security_Policy.docx"
ONBOARDING_MD = "onboarding.md"
REIMBURSEMENT_MD = "报销制度.md"
REMOTE_PDF = "Remote_Work_Policy.pdf"

CHINESE_FILES = {HANDBOOK_PDF, REIMBURSEMENT_MD}
ALL_FILES = [HANDBOOK_PDF, SECURITY_DOCX, ONBOARDING_MD, REIMBURSEMENT_MD, REMOTE_PDF]

# ---------------------------------------------------------------------------------------------
# 员工手册.pdf — one page per topic.  Blocks: ("h", heading), ("p", paragraph), ("table", rows).
# ---------------------------------------------------------------------------------------------

HANDBOOK_PAGES = [
    ("欢迎加入兰亭科技", [
        ("p", "杭州兰亭科技有限公司（以下简称“兰亭科技”或“公司”）成立于 2016 年，总部位于杭州市西湖区"
              "文三路 188 号兰亭大厦，并在北京和深圳设有分公司。公司专注于企业协同与知识管理软件，目前员工"
              "约 420 人，服务超过 1600 家企业客户。"),
        ("p", "公司首席执行官为许嘉言，人力资源总监为陈思雨，财务总监为林晓梅，首席信息安全官为周明远。"),
        ("h", "关于本手册"),
        ("p", "本手册由人力资源部编写，适用于与公司签订劳动合同的全体正式员工；实习生与外包人员参照执行，"
              "另有约定的从其约定。本手册为 2024 版，自 2024 年 3 月 1 日起施行，原 2021 版手册同时废止。"),
        ("p", "手册共分七个部分：欢迎页、入职指南、考勤与加班、年假与请假、差旅与报销、信息安全以及福利。"
              "与报销流程有关的细则见《报销制度》；与密码、网络接入和数据分级有关的技术要求见英文版"
              "《IT Security Policy》；远程办公的安排见英文版《Remote Work Policy》。"),
        ("p", "人力资源部每年 12 月对手册进行一次评审。修订内容将通过兰亭通（LantingOne）发布公告，员工须在"
              "公告发布后 7 天内在线确认已阅读。如对手册内容有疑问，请联系人力资源部：邮箱 hr@lantingtech.cn，"
              "分机 8100。"),
        ("h", "常用内部系统"),
        ("p", "兰亭通（LantingOne）用于考勤打卡、请假、审批和报销；兰信（LanChat）用于即时沟通和视频会议；"
              "兰亭云盘（LantingDrive）用于存储和共享工作文件。以上系统均使用公司邮箱账号登录。"),
        ("h", "我们的价值观"),
        ("p", "客户第一、坦诚沟通、长期主义、共同成长。我们希望每位同事都能在兰亭科技获得成长，也欢迎大家"
              "随时对本手册提出修改建议。"),
    ]),
    ("入职指南", [
        ("h", "一、入职报到"),
        ("p", "新员工应在录用通知书载明的入职日期上午 9:30 前往总部 1 楼前台报到；北京和深圳分公司的员工"
              "到当地办公室前台报到。报到当天请携带以下材料：居民身份证原件；最高学历证书及学位证书原件；"
              "上一家单位出具的离职证明；本人名下的招商银行储蓄卡，用于发放工资；入职前一个月内的体检报告。"
              "材料不齐全的，应在入职后 15 天内补交。"),
        ("h", "二、劳动合同与试用期"),
        ("p", "公司与新员工在入职当天签订书面劳动合同，首次合同期限一般为三年，试用期为三个月。试用期内"
              "工资按转正工资的 100% 发放，不打折扣。试用期结束前两周，员工须在兰亭通提交转正申请，并向部门"
              "负责人和人力资源业务伙伴进行转正述职；述职通过后，自试用期满次日起转正。"),
        ("p", "公司每月 10 日发放上一个自然月的工资，遇节假日提前至最近的工作日发放。"),
        ("h", "三、入职培训与入职伙伴"),
        ("p", "公司每月第一个星期三举办为期两天的新员工培训“兰亭启航”，内容包括公司历史与战略、产品介绍、"
              "合规与信息安全以及常用系统的使用。新员工应参加入职后最近的一期培训；因出差等原因无法参加的，"
              "须经人力资源部同意后顺延至下一期。"),
        ("p", "每位新员工都会由所在团队指定一名入职伙伴（Buddy），在试用期内帮助新同事熟悉工作环境和团队"
              "协作方式。入职伙伴由在公司工作满一年的同事担任，每带教一名新员工可获得 500 元带教奖励，"
              "在新员工转正后随当月工资发放。"),
        ("h", "四、第一天的其他事项"),
        ("p", "报到当天，行政部会为新员工拍照并制作工牌，工牌同时用作门禁卡和打印卡。IT 服务台会为新员工"
              "发放笔记本电脑并协助开通账号，具体步骤见英文版《Onboarding Guide》。新员工须在入职当天签署"
              "《保密与知识产权协议》。"),
    ]),
    ("考勤与加班", [
        ("h", "一、工作时间"),
        ("p", "公司实行标准工时制与弹性上班相结合的制度。员工每周工作五天（周一至周五），每天工作 8 小时；"
              "午休时间为 12:00 至 13:00，不计入工作时间。员工可在 8:30 至 10:00 之间的任意时间到岗，工作满"
              " 8 小时后即可下班。例如，9:15 到岗的员工可在 18:15 之后下班。"),
        ("h", "二、打卡规则"),
        ("p", "员工每天须在兰亭通打卡两次：到岗时一次，离开时一次。在办公室可通过门禁刷工牌自动打卡；外出"
              "办事或远程办公时，使用兰亭通的定位打卡功能。因忘记打卡造成记录缺失的，应在当月最后一个工作日前"
              "提交补卡申请，每月补卡不得超过 4 次。"),
        ("p", "10:00 以后到岗视为迟到。每月迟到累计 3 次以内不作处理；从第 4 次起，每次扣减绩效分 1 分。"
              "迟到超过 2 小时且未提前请假的，按旷工半天处理。"),
        ("h", "三、加班申请"),
        ("p", "公司不提倡加班。确因工作需要加班的，员工须事先在兰亭通提交加班申请，经直属上级批准后方可计入"
              "加班时长；事后补报的加班申请须在加班后 3 个工作日内提交，并由部门负责人审批。每月加班时长"
              "累计不得超过 36 小时。"),
        ("h", "四、加班补偿"),
        ("p", "工作日延长工作时间的，按 1:1 折算为调休，调休须在加班发生后两个月内使用，逾期未休的按 1.5 倍"
              "工资支付加班费。休息日加班的，优先安排同等时长的调休；无法安排调休的，按 2 倍工资支付。法定"
              "节假日加班的，一律按 3 倍工资支付，不以调休代替。"),
        ("h", "五、晚间加班"),
        ("p", "当天工作至 21:00 以后的，可享受加班餐补，每次 35 元；工作至 22:00 以后离开公司的，可乘坐出租车"
              "或网约车回家，车费凭发票据实报销。报销的提交方式见《报销制度》。"),
    ]),
    ("年假与请假", [
        ("h", "一、带薪年假"),
        ("p", "员工的带薪年假天数根据累计工作年限（含在其他单位的工作年限）确定，公司在国家法定标准的基础上"
              "每档额外增加 5 天：累计工作满 1 年不满 10 年的，年假为 10 天；满 10 年不满 20 年的，年假为 15 天；"
              "满 20 年及以上的，年假为 20 天。"),
        ("p", "新入职员工当年的年假按剩余日历天数折算，折算后不足 1 整天的部分不享受。年假以半天为最小单位"
              "申请。当年的年假可保留至次年 3 月 31 日，逾期未休且非公司原因造成的，视为自动放弃。申请 3 天"
              "以内的年假，应至少提前 3 个工作日在兰亭通提交；申请 3 天以上的年假，应至少提前两周提交。"),
        ("h", "二、病假"),
        ("p", "员工每年享有 5 天全薪病假。连续病假 2 天及以上的，须在返岗后 3 个工作日内上传二级及以上医院"
              "出具的病假证明。超过全薪病假天数的部分，按本人基本工资的 80% 发放病假工资，但不低于当地最低"
              "工资标准的 80%。"),
        ("h", "三、事假"),
        ("p", "事假为无薪假，按日扣减工资。每年累计事假不得超过 15 天，超过部分须经分管副总裁批准。"),
        ("h", "四、婚育假与丧假"),
        ("p", "婚假为 13 天，须在领取结婚证后一年内一次性休完。女员工产假为 158 天，难产的增加 15 天，生育"
              "多胞胎的每多生育一个婴儿增加 15 天。男员工在配偶生育期间享受陪产假 15 天。子女未满 3 周岁的，"
              "父母每年各享受育儿假 10 天。员工的父母、配偶或子女去世的，可享受丧假 3 天；祖父母、外祖父母"
              "或兄弟姐妹去世的，可享受丧假 1 天。"),
        ("h", "五、审批流程"),
        ("p", "所有假期均须通过兰亭通申请。3 天及以内的假期由直属上级审批；超过 3 天的，由直属上级和部门"
              "负责人依次审批，并由人力资源部备案。突发疾病等紧急情况无法提前申请的，须在当天 10:00 前通过"
              "电话或兰信告知直属上级，并在返岗后 2 个工作日内补办请假手续。"),
    ]),
    ("差旅与报销", [
        ("h", "一、出差申请"),
        ("p", "员工因公出差，须在出发前通过兰亭通提交出差申请，写明出差事由、目的地、起止日期和预算，经直属"
              "上级批准后方可预订行程。连续出差超过 10 天或前往境外的，还须经部门负责人批准。"),
        ("h", "二、交通标准"),
        ("p", "机票、火车票和酒店原则上通过兰亭通的商旅模块预订，费用由公司统一结算，员工无需垫付。乘坐火车"
              "的，可乘坐高铁或动车二等座；乘坐飞机的，一律乘坐经济舱。高铁车程在 5 小时以内的，原则上应乘坐"
              "高铁而非飞机。副总裁及以上职级可乘坐高铁一等座，单程飞行时间超过 6 小时的国际航班可乘坐商务舱。"),
        ("p", "出差期间的市内交通优先乘坐地铁和公交；乘坐出租车或网约车的，费用凭发票报销，每天合计不超过"
              " 150 元。"),
        ("h", "三、住宿与伙食补贴标准"),
        ("p", "住宿费按城市类别实行每晚上限标准，伙食补贴按出差天数定额发放，无需提供发票。具体标准如下："),
        ("table", [
            ["城市类别", "适用城市", "住宿上限（每晚）", "伙食补贴（每天）"],
            ["一线城市", "北京、上海、广州、深圳", "600 元", "120 元"],
            ["新一线城市", "成都、杭州、南京、武汉、西安、苏州", "450 元", "100 元"],
            ["其他国内城市", "上述以外的城市", "350 元", "80 元"],
            ["境外及港澳台", "全部", "1200 元", "300 元"],
        ]),
        ("p", "例如，前往上海出差三晚，住宿费报销上限合计为 1800 元。住宿费超出上限的部分由员工自行承担；"
              "因会议、展会等原因确需超标准住宿的，须事先经部门负责人书面批准。两名同性别员工同行出差的，"
              "鼓励合住一间，合住时住宿上限按单人标准的 1.5 倍执行。"),
        ("h", "四、报销"),
        ("p", "出差结束后，员工应通过兰亭通提交差旅报销单。报销的提交时限、审批层级和发票要求以《报销制度》"
              "为准。出差期间发生的业务招待费须单独填写招待费报销单，不得计入差旅费。"),
    ]),
    ("信息安全", [
        ("p", "信息安全是每位员工的责任。本章规定办公场所与日常行为方面的安全要求；密码规则、VPN 接入、设备"
              "管理和数据分级等技术要求见英文版《IT Security Policy》，两者具有同等效力。"),
        ("h", "一、工牌与门禁"),
        ("p", "员工在办公区域内须佩戴工牌，并将照片面朝外。进出门禁时须一人一卡，不得让他人尾随进入，也不得"
              "将工牌借给他人使用。工牌遗失的，应在当天告知行政部（分机 8300）挂失，补办工牌收取工本费 50 元。"),
        ("h", "二、访客管理"),
        ("p", "访客须由接待员工提前一天在兰亭通登记，到访时在前台出示身份证件领取访客证。访客在办公区域内"
              "须全程由接待员工陪同，不得进入机房和财务室。访客离开时应交还访客证。"),
        ("h", "三、清洁桌面与文件处理"),
        ("p", "下班或离开座位超过 30 分钟时，员工应将纸质机密文件锁入抽屉，白板上的敏感内容应及时擦除。公司"
              "打印机均采用刷工牌取件的方式，打印任务在 24 小时内未取件的将被自动删除。需要销毁的纸质文件应"
              "放入各楼层的保密文件销毁箱，不得直接丢入普通垃圾桶。"),
        ("h", "四、对外沟通"),
        ("p", "未经品牌公关部批准，员工不得以公司名义接受媒体采访，也不得在社交媒体上发布未公开的产品、客户"
              "和财务信息。在咖啡厅、高铁等公共场所讨论工作时，应注意避免泄露客户名称等敏感信息。"),
        ("h", "五、保密义务"),
        ("p", "员工入职时签署的《保密与知识产权协议》在劳动合同终止后继续有效，保密期限为离职后两年。违反"
              "本章规定的，公司将视情节轻重给予警告、降级直至解除劳动合同的处理；造成损失的，依法追究赔偿"
              "责任。"),
        ("h", "六、发现问题怎么办"),
        ("p", "如发现可疑邮件、设备丢失或其他安全事件，请立即按照《IT Security Policy》规定的方式报告信息安全"
              "团队，不要自行处理，也不要删除相关证据。"),
    ]),
    ("福利", [
        ("h", "一、社会保险与住房公积金"),
        ("p", "公司依法为员工缴纳养老、医疗、失业、工伤和生育保险，并按员工实际工资缴纳住房公积金，缴存比例"
              "为个人和公司各 12%。"),
        ("h", "二、补充商业医疗保险"),
        ("p", "公司为全体正式员工免费投保补充商业医疗保险，员工的未成年子女也可免费加入。门诊和住院费用在"
              "社保报销后的剩余部分可按 90% 的比例理赔，每人每年理赔上限为 2 万元。员工配偶可自费加入，保费"
              "从工资中代扣。"),
        ("h", "三、年度体检"),
        ("p", "公司每年为员工安排一次健康体检，体检标准为每人 1200 元。员工可在体检机构以协议价为父母自费"
              "加购体检套餐。"),
        ("h", "四、餐补与通讯补贴"),
        ("p", "餐补为每个工作日 25 元，通讯补贴为每月 100 元，均随当月工资发放。"),
        ("h", "五、节日与生日"),
        ("p", "春节、端午节和中秋节，公司为每位员工发放节日礼品。员工生日当月可获得 300 元电子礼品卡，并可在"
              "生日当月任选一天享受半天带薪生日假。"),
        ("h", "六、学习与成长"),
        ("p", "每位员工每年可使用 3000 元学习基金，用于购买专业书籍、参加外部课程或职业资格考试，凭发票在"
              "兰亭通申请。当年未使用的额度不结转到下一年。"),
        ("h", "七、内部推荐奖励"),
        ("p", "员工推荐的候选人入职并通过试用期后，推荐人可获得内推奖金：普通岗位 4000 元，高级及以上岗位"
              " 8000 元。"),
        ("h", "八、团队活动与长期服务"),
        ("p", "每个团队每季度可按每人 200 元的标准组织团建活动。员工在公司服务满 5 年、10 年时，分别获得长期"
              "服务纪念奖和 5000 元、10000 元的奖金。总部 4 楼设有员工健身房，每天 7:00 至 22:00 免费开放。"),
        ("h", "九、年终奖"),
        ("p", "公司根据年度经营情况和个人绩效发放年终奖，一般为 1 至 4 个月工资，于次年春节前发放。年终奖"
              "发放日仍在职的员工方可领取。"),
    ]),
]

# ---------------------------------------------------------------------------------------------
# IT_Security_Policy.docx — blocks: ("h1"|"h2", text), ("p", text), ("bullets", [...]),
# ("table", rows).
# ---------------------------------------------------------------------------------------------

SECURITY_TITLE = "IT Security Policy"
SECURITY_BLOCKS = [
    ("p", "Lanting Technology (兰亭科技) · Document owner: Information Security Team · Version 3.2 · "
          "Effective date: 1 March 2024 · Approved by: Zhou Mingyuan, Chief Information Security Officer (CISO)"),
    ("h1", "1. Purpose and Scope"),
    ("p", "This policy sets out the minimum technical security requirements for everyone who uses Lanting "
          "Technology's information systems, including full-time employees, interns, contractors and "
          "outsourced staff. It complements the information security chapter of the Chinese-language Employee "
          "Handbook (员工手册), which covers badges, visitors, clean desks and confidentiality. Where the two "
          "documents overlap, the stricter requirement applies."),
    ("p", "The policy covers company laptops and phones, personal devices used for work, cloud services, and "
          "all data created or processed on behalf of Lanting Technology or its customers. The Information "
          "Security Team reviews it every year, and the CISO re-approves it after each review."),
    ("h1", "2. Accounts and Passwords"),
    ("h2", "2.1 Password rules"),
    ("p", "All passwords for company accounts must follow these rules:"),
    ("bullets", [
        "Passwords must be at least 12 characters long and contain at least three of the following: "
        "uppercase letters, lowercase letters, digits and symbols.",
        "Passwords must be changed every 90 days. LantingOne sends an email reminder one week before a "
        "password expires.",
        "None of your last 10 passwords may be reused.",
        "After 6 consecutive failed sign-in attempts the account is locked for 30 minutes. To unlock it "
        "sooner, contact the IT Helpdesk.",
        "Never share a password with anyone, including IT staff. IT staff will never ask for your password.",
    ]),
    ("h2", "2.2 Password manager"),
    ("p", "Store work passwords only in LantingVault, the company password manager that is installed on every "
          "company laptop. Saving work passwords in browsers, spreadsheets or notes apps is not allowed."),
    ("h2", "2.3 Multi-factor authentication"),
    ("p", "Multi-factor authentication (MFA) is mandatory for email, LantingOne, LantingDrive, LantingConnect "
          "and all administrator accounts. The approved second factors are the Lanting Authenticator mobile "
          "app and FIDO2 hardware keys issued by IT. SMS codes are not accepted as a second factor. A lost "
          "phone or hardware key must be reported so that the factor can be revoked."),
    ("h2", "2.4 Administrator rights"),
    ("p", "Administrator rights are granted only for a specific task and expire automatically after 8 hours. "
          "Employees who need them submit a request in LantingOne, which is approved by the Information "
          "Security Team."),
    ("h1", "3. Data Classification"),
    ("p", "All information is assigned one of four classification levels. The owner of a document is "
          "responsible for labelling it; unlabelled documents are treated as Internal."),
    ("table", [
        ["Level", "Description and examples", "Handling rules"],
        ["L1 Public", "Information approved for public release: website content, published press releases, "
                      "marketing brochures.",
         "No restrictions once approved by the Brand & PR department."],
        ["L2 Internal", "Day-to-day business information: internal announcements, meeting notes, "
                        "organisation charts.",
         "Share only with employees and contractors; store in LantingDrive."],
        ["L3 Confidential", "Customer data, contracts, source code, unreleased product plans, salary "
                            "information.",
         "Need-to-know basis; sharing outside the company requires manager approval and a password-protected "
         "LantingDrive link that expires within 7 days."],
        ["L4 Restricted", "National ID numbers, bank account details, encryption keys, merger and "
                          "acquisition documents.",
         "Access list approved by the CISO; never sent by email or copied to removable media; stored only in "
         "designated encrypted folders."],
    ]),
    ("p", "The mail gateway blocks email attachments that are labelled L3 or L4. Use LantingDrive share links "
          "instead."),
    ("h1", "4. Remote Access and Networks"),
    ("p", "Internal systems can be reached from outside the office only through LantingConnect, the company "
          "VPN client, which is pre-installed on every company laptop. Sign in with your company account and "
          "MFA. Split tunnelling is disabled, so all traffic goes through the VPN while it is connected."),
    ("p", "In the office, company devices join the Wi-Fi network Lanting-Corp using a device certificate. The "
          "Lanting-Guest network is for visitors only: it offers internet access but no access to internal "
          "systems, and its password changes every Monday."),
    ("p", "Public Wi-Fi in hotels, cafés and airports may be used only while LantingConnect is connected. "
          "Setting up your own wireless access points or other network devices in the office is prohibited."),
    ("h1", "5. Devices"),
    ("h2", "5.1 Company laptops"),
    ("p", "Every company laptop is encrypted with BitLocker (Windows) or FileVault (macOS) and managed by IT. "
          "Do not disable encryption, the antivirus software or the device management agent."),
    ("p", "Screens lock automatically after 5 minutes of inactivity. Lock your screen manually whenever you "
          "leave your desk."),
    ("p", "Security updates are installed automatically. Critical patches must be installed within 72 hours "
          "of release and all other updates within 14 days; a device that falls behind loses VPN access until "
          "it is updated."),
    ("p", "Software may be installed only from Lanting Software Center. Requests for software that is not in "
          "the catalogue are reviewed by the Information Security Team within 3 working days."),
    ("h2", "5.2 Removable media and personal devices"),
    ("p", "USB storage devices are blocked on company laptops. To exchange files with a customer, use a "
          "LantingDrive share link."),
    ("p", "Personal phones may access company email and LanChat only through the managed work profile. "
          "Company data must not be stored on personal computers."),
    ("h2", "5.3 Lost devices and leaving the company"),
    ("p", "Report a lost or stolen laptop, phone or hardware key immediately (see section 7) so that it can be "
          "wiped remotely."),
    ("p", "When you leave the company, return your laptop, charger, hardware key and any other IT equipment to "
          "the IT Helpdesk within 5 working days after your last working day. Your accounts are disabled at "
          "18:00 on your last working day."),
    ("h1", "6. Email and Phishing"),
    ("p", "Phishing is the most common way for attackers to get into company systems. Be suspicious of "
          "messages that create urgency, ask for credentials or changes to payment details, or come from "
          "look-alike domains. Our only email domain is lantingtech.cn."),
    ("p", "Use the Report Phishing button in the mail client to report a suspicious message. The Information "
          "Security Team runs simulated phishing exercises every quarter; anyone who clicks a simulated "
          "phishing link must complete a 20-minute refresher course within one week."),
    ("p", "Automatic forwarding of company email to external addresses is not allowed."),
    ("h1", "7. Incident Reporting"),
    ("p", "A security incident is any event that may put company or customer data at risk, such as a lost "
          "device, a suspected malware infection, a password typed into a phishing page, or data sent to the "
          "wrong recipient."),
    ("p", "Report every incident within 1 hour of discovering it, by email to security@lantingtech.cn or by "
          "calling the 24-hour security hotline at extension 8010. Do not investigate on your own and do not "
          "delete any evidence."),
    ("p", "During working hours the Information Security Team acknowledges each report within 30 minutes and "
          "decides whether customers or regulators must be notified."),
    ("h1", "8. Training and Compliance"),
    ("p", "New employees must complete the online security awareness course in LantingOne within their first "
          "10 working days. All employees repeat the course every year in November."),
    ("p", "Violations of this policy may lead to disciplinary action up to termination of employment. "
          "Exceptions must be requested in writing and approved by the CISO, for at most 6 months at a time."),
]

# ---------------------------------------------------------------------------------------------
# onboarding.md (English)
# ---------------------------------------------------------------------------------------------

ONBOARDING_TEXT = """\
# Onboarding Guide for New Employees

Welcome to Lanting Technology (兰亭科技)! This guide walks you through your first week, the accounts
you will receive, the equipment you will get and the people to contact when you need help. Contracts,
probation and pay are covered in the Employee Handbook (员工手册); this guide focuses on practical steps.

## Before your first day

About one week before you start, HR sends you an email with your start date, the name of your manager
and the name of your onboarding buddy. Reply to confirm whether you prefer a Windows laptop or a Mac.
Engineers receive a Mac unless they ask otherwise.

## Your first week

### Day 1

- **9:30** Check in at the front desk on the 1st floor of Lanting Tower, our Hangzhou headquarters.
- **10:00** HR paperwork: sign your employment contract and the Confidentiality and IP Agreement.
- **11:00** Have your badge photo taken by Admin, then pick up your laptop at the IT Helpdesk in
  Room 501 on the 5th floor.
- **12:00** Welcome lunch with your team, paid by the company.
- **Afternoon** Set up your accounts together with your buddy (see *Accounts* below).

### Day 2

- Meet your manager for a one-to-one to agree on your goals for the probation period.
- Start the online security awareness course in LantingOne.
- Join your team's stand-up meeting and ask your buddy to introduce you to the people you will work with.

### Days 3 to 5

- Shadow your buddy in meetings and read your team's space in LantingDrive.
- Engineers: set up the development environment and ask your manager to request GitLab and Jira access.
- Check the date of your "Lanting Launch" (兰亭启航) orientation. HR registers you automatically for the
  next session and sends the invitation to your calendar.
- On Friday afternoon, have a 30-minute check-in with your manager and your buddy to review the week.

## Accounts

| Account | What it is for | How you get it |
| --- | --- | --- |
| Email (firstname.lastname@lantingtech.cn) | Email and calendar | Created before day 1; the temporary password is sent by SMS to your personal phone |
| LantingOne | Clock-in, leave, approvals and expense claims | Same sign-in as email |
| LanChat | Instant messaging and video meetings | Install it from Lanting Software Center |
| LantingDrive | File storage and sharing, 200 GB per person | Activated automatically |
| LantingConnect | VPN for reaching internal systems from outside the office | Pre-installed on your laptop |
| GitLab and Jira | Code and issue tracking (engineering only) | Requested by your manager in LantingOne |

Change the temporary password the first time you sign in and register the Lanting Authenticator app
on your phone on day 1. The temporary password is valid for 48 hours; if it has expired, ask the IT
Helpdesk for a new one. The password rules themselves are in the IT Security Policy.

## Equipment

Every new employee receives:

- a laptop: a 14-inch Lenovo ThinkPad X1 Carbon (Windows) or a 14-inch MacBook Pro (macOS);
- a 27-inch monitor, keyboard and mouse at your desk;
- a noise-cancelling headset;
- a FIDO2 hardware security key (engineers and Finance staff only).

Additional equipment, such as a second monitor or an ergonomic chair, can be requested in LantingOne
under **IT Requests**. Your manager approves the request, and standard items are delivered within
3 working days. Laptops are replaced every 4 years. All equipment remains company property.

You get a fixed desk in your team's area. Colleagues visiting from the Beijing and Shenzhen offices can
use the hot desks on the 3rd floor.

## Who to contact

| Topic | Team | Contact |
| --- | --- | --- |
| Contract, probation, payroll, leave | HR | hr@lantingtech.cn, ext. 8100 |
| Laptop, accounts, passwords, VPN | IT Helpdesk (Room 501) | it-help@lantingtech.cn, ext. 8000 |
| Expense claims and invoices | Finance | finance@lantingtech.cn, ext. 8200 |
| Badge, desk, meeting rooms, post | Admin (front desk) | admin@lantingtech.cn, ext. 8300 |
| Security incidents | Information Security | security@lantingtech.cn, ext. 8010 (24 hours) |

The IT Helpdesk is staffed Monday to Friday from 8:30 to 19:00. For everyday questions (where things
are, who does what, how the team works) your buddy is the best first contact.
"""

# ---------------------------------------------------------------------------------------------
# 报销制度.md (Chinese)
# ---------------------------------------------------------------------------------------------

REIMBURSEMENT_TEXT = """\
# 兰亭科技费用报销制度

> 版本：2024 版；生效日期：2024 年 3 月 1 日；归口管理部门：财务部。

## 一、适用范围

本制度适用于公司全体员工因公发生的各类费用的报销，包括差旅费、业务招待费、办公用品费、培训费以及加班交通费和餐费。差旅的交通、住宿和伙食补贴标准见《员工手册》“差旅与报销”一章，加班餐补和加班打车的条件见《员工手册》“考勤与加班”一章；本制度规定报销的时限、审批、发票和付款要求。

## 二、提交时限

1. 员工应在费用发生之日起 30 天内通过兰亭通提交报销申请；差旅费以返程日期为起算日。
2. 超过 30 天但未超过 60 天的，须附书面说明，并经部门负责人特批后方可报销。
3. 超过 60 天的费用，原则上不予报销。
4. 每年 12 月 20 日为当年费用的最后提交日；12 月 21 日至 12 月 31 日发生的费用，可在次年 1 月提交。

## 三、审批层级

报销单提交后，按单笔报销金额由以下人员依次审批：

| 单笔金额 | 审批人 |
| --- | --- |
| 2000 元及以下 | 直属上级 |
| 2000 元以上至 10000 元 | 直属上级、部门负责人 |
| 10000 元以上至 50000 元 | 直属上级、部门负责人、财务总监 |
| 50000 元以上 | 在上一档基础上增加首席执行官审批 |

业务招待费无论金额大小，均须经部门负责人审批。所有报销单最后由财务部费用组进行票据审核。审批人应在收到报销单后 3 个工作日内完成审批，逾期的由系统自动提醒。

## 四、发票要求

1. 报销须提供合法有效的发票，优先使用增值税电子发票。
2. 发票抬头必须为“杭州兰亭科技有限公司”，纳税人识别号为 91330106MA2B7LT8X4；抬头或税号错误的发票不予报销。
3. 电子发票须上传 PDF 或 OFD 原文件，不接受截图或照片；同一张发票只能报销一次，系统会自动查重。
4. 纸质发票须粘贴在 A4 报销粘贴单上，在兰亭通提交后 5 个工作日内交到总部 6 楼财务部，或投入北京、深圳分公司的票据收集箱。
5. 乘坐出租车或网约车的，须同时提供发票和行程单；火车票以电子客票的报销凭证为准，机票以电子行程单为准。
6. 单笔金额 500 元以上的办公用品，须同时提供购物清单。

## 五、发票遗失

发票遗失的，须由开票单位提供加盖发票专用章的发票复印件，并填写《发票遗失情况说明》，经部门负责人签字后报销。每名员工每年最多可按此方式报销 2 次。

## 六、业务招待费

业务招待应事先经直属上级同意，人均标准不超过 300 元（含酒水）。报销时须注明招待对象所属单位、人数及事由。单次招待金额超过 3000 元的，须事先在兰亭通提交招待申请，并经部门负责人批准。

## 七、借款与冲账

预计出差费用超过 5000 元，或需要为客户活动垫付费用的，员工可在兰亭通申请借款。借款须在出差或活动结束后 15 天内冲账，未结清原借款前不得申请新的借款；逾期 30 天仍未冲账的，财务部将从当月工资中扣回。

## 八、付款

报销单审核通过后，财务部在每周二和周五统一付款，款项转入员工的工资卡（招商银行储蓄卡）。报销进度可在兰亭通的“我的报销”页面查询。

## 九、违规处理

虚开发票、重复报销、虚构费用等行为属于严重违纪，公司将追回相关款项，并视情节解除劳动合同；涉嫌犯罪的，移送司法机关处理。

## 十、联系方式

如有疑问，请联系财务部费用组：邮箱 finance@lantingtech.cn，分机 8200。
"""

# ---------------------------------------------------------------------------------------------
# Remote_Work_Policy.pdf (English) — one list of blocks per page.
# ---------------------------------------------------------------------------------------------

REMOTE_TITLE = "Remote Work Policy"
REMOTE_SUBTITLE = ("Lanting Technology · Policy owner: Human Resources · Version 2.0 · "
                   "Effective 1 March 2024")
REMOTE_PAGES = [
    [
        ("h", "1. Purpose"),
        ("p", "Lanting Technology supports flexible working wherever the work allows it. This policy explains "
              "who may work remotely, how often, how to request it, and what we expect from employees on "
              "remote days. It applies to employees at the Hangzhou headquarters and at the Beijing and "
              "Shenzhen offices. Questions about this policy should be sent to HR at hr@lantingtech.cn."),
        ("p", "Remote work is a working arrangement, not an entitlement. It is agreed between each employee "
              "and their manager, and it can be adjusted when business needs change. Working remotely does "
              "not change an employee's salary, benefits, working hours or performance expectations."),
        ("h", "2. Eligibility"),
        ("p", "An employee may work remotely when all of the following conditions are met:"),
        ("bullets", [
            "the employee has passed the probation period; remote work is not available during probation;",
            "the employee's most recent performance rating is \"Meets expectations\" or higher;",
            "the role can be done without being physically present. Roles that require on-site presence, "
            "such as front desk, hardware lab, facilities and server room staff, are not eligible;",
            "the employee has completed the annual security awareness course.",
        ]),
        ("p", "Interns and contractors may work remotely only if their contract explicitly allows it."),
        ("h", "3. How much remote work is allowed"),
        ("p", "Eligible employees may work remotely for up to 3 days per week. Tuesday and Thursday are anchor "
              "days: everyone is expected in the office on these days for team meetings, planning and "
              "collaboration, so remote days can only be Monday, Wednesday or Friday. Unused remote days "
              "cannot be carried over to the following week."),
        ("p", "Managers may set a lower limit for their team, for example during a product launch or during "
              "month-end closing in Finance, but they must explain the reason to the team in writing."),
    ],
    [
        ("h", "4. Requesting remote work"),
        ("p", "There are two types of remote work arrangement:"),
        ("bullets", [
            "Regular schedule: fixed remote days every week, for example every Monday and Friday. Submit a "
            "Remote Work request in LantingOne and have it approved by your manager. A regular schedule is "
            "valid for 6 months and must then be renewed.",
            "Ad-hoc remote day: a single remote day outside your regular schedule, for example to wait for "
            "a delivery or a repair. Ask your manager in LantingOne no later than 18:00 on the previous "
            "working day. Each employee may take at most 2 ad-hoc remote days per month.",
        ]),
        ("p", "Submit a request for a regular schedule at least one week before the first remote day. HR "
              "reviews all regular schedules twice a year, in June and in December."),
        ("h", "5. Working hours and availability"),
        ("p", "On remote days, employees keep their normal working hours and must be available on LanChat and "
              "by phone during the core hours of 10:00 to 16:00. Messages from colleagues should be answered "
              "within 30 minutes during core hours. Set your LanChat status to \"Remote\" so that colleagues "
              "know where you are."),
        ("p", "Clock in and out in LantingOne as on office days; the app marks the day as remote "
              "automatically once the request has been approved. Overtime on remote days follows the same "
              "approval rules as in the office. Cameras should be switched on in team meetings unless the "
              "connection is poor."),
        ("h", "6. Home workspace and allowances"),
        ("p", "Employees must work from a quiet, safe place with a stable internet connection of at least "
              "50 Mbps. Public places such as cafés may be used only occasionally and for short periods, and "
              "never for calls in which customers are discussed."),
        ("p", "Employees with an approved regular schedule receive a one-time home-office allowance of "
              "CNY 1,000 for a chair, a desk lamp or similar items, paid with the next month's salary. No "
              "separate internet allowance is paid: the monthly communication allowance described in the "
              "Employee Handbook is meant to cover home internet costs. The daily meal allowance is paid on "
              "remote days as well."),
        ("p", "With their manager's approval, employees may borrow one company monitor for use at home. IT "
              "records its serial number, and the monitor must be returned when the arrangement ends."),
    ],
    [
        ("h", "7. Security on remote days"),
        ("p", "All rules of the IT Security Policy apply on remote days. In particular:"),
        ("bullets", [
            "connect to internal systems only through the LantingConnect VPN;",
            "do not let family members or visitors use your company laptop;",
            "do not print documents classified as Confidential or Restricted at home;",
            "lock your screen whenever you step away, even at home;",
            "never leave your laptop in a car overnight.",
        ]),
        ("p", "A home router whose administrator password has never been changed is a common weak point. "
              "Employees who work remotely must change the router's default password and keep its firmware "
              "up to date."),
        ("h", "8. Working from another city or abroad"),
        ("p", "Working remotely from another city in mainland China, for example while visiting family, is "
              "possible for up to 20 working days per calendar year. During these days the anchor-day rule "
              "does not apply, but the manager must approve each period in advance and the employee must be "
              "reachable as usual."),
        ("p", "Remote work from outside mainland China, including Hong Kong, Macao and Taiwan, is not allowed "
              "by default because of data protection and tax rules. Exceptions require the approval of the "
              "responsible Vice President and of the CISO, and are limited to 10 working days per year."),
        ("h", "9. Health and safety"),
        ("p", "Employees should take regular breaks and set up their screen and chair ergonomically. An "
              "accident that happens while working from home must be reported to HR within 24 hours, in the "
              "same way as an accident in the office."),
        ("h", "10. Changes and ending the arrangement"),
        ("p", "A manager may suspend or end a regular remote schedule if performance or availability falls "
              "below expectations, or if business needs change. The employee is informed in writing at least "
              "one week in advance, except in urgent cases. Employees can end their own regular schedule at "
              "any time by cancelling it in LantingOne."),
        ("p", "Repeated misuse of remote work, such as being unreachable during core hours, is treated as a "
              "breach of the attendance rules in the Employee Handbook."),
    ],
]


# ---------------------------------------------------------------------------------------------
# PDF builders
# ---------------------------------------------------------------------------------------------

def _pdf_doc(path: Path, title: str, subject: str):
    """A SimpleDocTemplate with fixed metadata and reportlab's invariant (reproducible) mode."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    return SimpleDocTemplate(
        str(path), pagesize=A4,
        leftMargin=22 * mm, rightMargin=22 * mm, topMargin=20 * mm, bottomMargin=20 * mm,
        title=title, author=AUTHOR, subject=subject, creator="zhiku data/build_sample.py",
        producer="ReportLab", keywords="", invariant=1,
    )


def _footer(font: str, text: str):
    """Page callback drawing a centred footer; ``text`` may contain ``{page}``."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm

    def draw(canvas, doc):
        canvas.saveState()
        canvas.setFont(font, 9)
        canvas.drawCentredString(A4[0] / 2, 12 * mm, text.format(page=doc.page))
        canvas.restoreState()
    return draw


# Chinese line-breaking rules (禁则): these may not start / end a line.
CJK_CANNOT_START = set("，。、；：！？）》」』】〕”’%…")
CJK_CANNOT_END = set("（《「『【〔“‘")
FRAME_PADDING = 6  # reportlab's default Frame padding, on each side


def wrap_cjk(text: str, font: str, size: float, first_width: float, width: float) -> list[str]:
    """Greedy line breaking for Chinese text by glyph width.

    Any character may end a line, except that runs of Latin letters and digits (``LantingOne``,
    ``hr@lantingtech.cn``, ``12:00``) stay together, closing punctuation never starts a line and
    opening brackets or quotes never end one (the preceding character moves down instead).
    """
    from reportlab.pdfbase.pdfmetrics import stringWidth

    tokens = re.findall(r"[0-9A-Za-z@._:%/\-]+|.", text)
    lines: list[list[str]] = []
    line: list[str] = []
    used = 0.0
    for token in tokens:
        if not line and token.isspace():
            continue
        token_width = stringWidth(token, font, size)
        limit = width if lines else first_width
        if line and used + token_width > limit and not token.isspace():
            cut = len(line)
            while cut > 1 and ((line + [token])[cut][0] in CJK_CANNOT_START
                               or line[cut - 1][-1] in CJK_CANNOT_END):
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
            while line and line[0].isspace():
                line.pop(0)
            used = sum(stringWidth(t, font, size) for t in line)
        line.append(token)
        used += token_width
    if line:
        lines.append(line)
    return ["".join(parts).strip() for parts in lines]


def build_handbook_pdf(path: Path) -> None:
    """员工手册.pdf: Chinese text in the built-in CID font STSong-Light, one topic per page."""
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import PageBreak, Paragraph, Spacer, Table, TableStyle
    from xml.sax.saxutils import escape

    font = "STSong-Light"
    pdfmetrics.registerFont(UnicodeCIDFont(font))
    title_style = ParagraphStyle("zh-title", fontName=font, fontSize=20, leading=28, spaceAfter=10,
                                 wordWrap="CJK")
    h_style = ParagraphStyle("zh-h", fontName=font, fontSize=13, leading=20, spaceBefore=8, spaceAfter=4,
                             wordWrap="CJK")
    p_style = ParagraphStyle("zh-p", fontName=font, fontSize=10.5, leading=18, firstLineIndent=21,
                             spaceAfter=4, wordWrap="CJK")
    cell_style = ParagraphStyle("zh-cell", fontName=font, fontSize=10, leading=15, wordWrap="CJK")

    doc = _pdf_doc(path, "兰亭科技员工手册（2024 版）", "员工手册")
    text_width = doc.width - 2 * FRAME_PADDING - 0.5  # a little slack against rounding

    def body(text: str) -> Paragraph:
        lines = wrap_cjk(text, font, p_style.fontSize, text_width - p_style.firstLineIndent, text_width)
        return Paragraph("<br/>".join(escape(line) for line in lines), p_style)

    story = []
    for index, (title, blocks) in enumerate(HANDBOOK_PAGES):
        if index:
            story.append(PageBreak())
        story.append(Paragraph(escape(title), title_style))
        for kind, content in blocks:
            if kind == "h":
                story.append(Paragraph(escape(content), h_style))
            elif kind == "p":
                story.append(body(content))
            elif kind == "table":
                rows = [[Paragraph(escape(cell), cell_style) for cell in row] for row in content]
                table = Table(rows, colWidths=[30 * mm, 70 * mm, 33 * mm, 33 * mm])
                table.setStyle(TableStyle([
                    ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E8EEF4")),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ]))
                story += [Spacer(1, 2 * mm), table, Spacer(1, 4 * mm)]
            else:
                raise ValueError(f"unknown block kind {kind!r}")

    footer = _footer(font, "兰亭科技员工手册（2024 版）　第 {page} 页")
    doc.build(story, onFirstPage=footer, onLaterPages=footer)


def build_remote_work_pdf(path: Path) -> None:
    """Remote_Work_Policy.pdf: English, Helvetica, three pages."""
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import ListFlowable, ListItem, PageBreak, Paragraph
    from xml.sax.saxutils import escape

    title_style = ParagraphStyle("en-title", fontName="Helvetica-Bold", fontSize=20, leading=26,
                                 spaceAfter=4)
    sub_style = ParagraphStyle("en-sub", fontName="Helvetica-Oblique", fontSize=9.5, leading=13,
                               spaceAfter=10)
    h_style = ParagraphStyle("en-h", fontName="Helvetica-Bold", fontSize=13, leading=17, spaceBefore=8,
                             spaceAfter=4)
    p_style = ParagraphStyle("en-p", fontName="Helvetica", fontSize=10.5, leading=15, spaceAfter=5)

    story = [Paragraph(REMOTE_TITLE, title_style), Paragraph(escape(REMOTE_SUBTITLE), sub_style)]
    for index, blocks in enumerate(REMOTE_PAGES):
        if index:
            story.append(PageBreak())
        for kind, content in blocks:
            if kind == "h":
                story.append(Paragraph(escape(content), h_style))
            elif kind == "p":
                story.append(Paragraph(escape(content), p_style))
            elif kind == "bullets":
                items = [ListItem(Paragraph(escape(item), p_style), leftIndent=14) for item in content]
                story.append(ListFlowable(items, bulletType="bullet", start="•", leftIndent=14))
            else:
                raise ValueError(f"unknown block kind {kind!r}")

    doc = _pdf_doc(path, f"Lanting Technology {REMOTE_TITLE}", REMOTE_TITLE)
    footer = _footer("Helvetica", "Lanting Technology - Remote Work Policy - Page {page}")
    doc.build(story, onFirstPage=footer, onLaterPages=footer)


# ---------------------------------------------------------------------------------------------
# DOCX builder
# ---------------------------------------------------------------------------------------------

def _normalize_zip(data: bytes) -> bytes:
    """Rewrite a zip archive with fixed member timestamps so that it is byte-reproducible."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, src.read(item.filename))
    return out.getvalue()


def build_security_docx(path: Path) -> None:
    """IT_Security_Policy.docx: Title, Heading 1/2, paragraphs, bullet list and one table."""
    import docx

    document = docx.Document()
    props = document.core_properties
    props.title = f"Lanting Technology {SECURITY_TITLE}"
    props.subject = SECURITY_TITLE
    props.author = AUTHOR
    props.last_modified_by = AUTHOR
    props.comments = ""
    props.keywords = "information security; passwords; data classification"
    props.category = "Policy"
    props.revision = 1
    props.created = FIXED_DATE
    props.modified = FIXED_DATE

    document.add_heading(f"Lanting Technology {SECURITY_TITLE}", level=0)
    for kind, content in SECURITY_BLOCKS:
        if kind == "h1":
            document.add_heading(content, level=1)
        elif kind == "h2":
            document.add_heading(content, level=2)
        elif kind == "p":
            document.add_paragraph(content)
        elif kind == "bullets":
            for item in content:
                document.add_paragraph(item, style="List Bullet")
        elif kind == "table":
            table = document.add_table(rows=0, cols=len(content[0]))
            table.style = "Light Grid Accent 1"
            for row in content:
                cells = table.add_row().cells
                for cell, text in zip(cells, row):
                    cell.text = text
        else:
            raise ValueError(f"unknown block kind {kind!r}")

    buffer = io.BytesIO()
    document.save(buffer)
    path.write_bytes(_normalize_zip(buffer.getvalue()))


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------

def write_markdown(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


# ---------------------------------------------------------------------------------------------
# Text extraction and QA verification
# ---------------------------------------------------------------------------------------------

def extract_text(path: Path) -> str:
    """The text a reader of the file sees: pypdf for PDFs, python-docx for DOCX, raw for Markdown."""
    if path.suffix == ".pdf":
        from pypdf import PdfReader
        return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)
    if path.suffix == ".docx":
        import docx
        document = docx.Document(str(path))
        parts = [p.text for p in document.paragraphs]
        for table in document.tables:
            for row in table.rows:
                parts.extend(cell.text for cell in row.cells)
        return "\n".join(parts)
    return path.read_text(encoding="utf-8")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def pdf_page_count(path: Path) -> int:
    from pypdf import PdfReader
    return len(PdfReader(str(path)).pages)


def check_page_counts(out_dir: Path = OUT_DIR) -> dict[str, int]:
    """Every handbook topic must fit on exactly one page; the remote policy has 2-3 pages."""
    counts = {name: pdf_page_count(out_dir / name) for name in (HANDBOOK_PDF, REMOTE_PDF)}
    assert counts[HANDBOOK_PDF] == len(HANDBOOK_PAGES), counts
    assert 2 <= counts[REMOTE_PDF] <= 3, counts
    return counts


def _check_evidence(where: str, name: str, evidence: str, texts: dict, squashed: dict, errors: list) -> None:
    """The evidence must occur exactly once in its file (exactly, for Markdown and DOCX)."""
    if name not in texts:
        errors.append(f"{where}: unknown file {name!r}")
        return
    # a clause, not a paragraph (an English clause runs longer than a Chinese one)
    if not 4 <= len(evidence) <= 60:
        errors.append(f"{where}: evidence length {len(evidence)} not in 4..60")
    occurrences = squashed[name].count(_squash(evidence))
    if occurrences != 1:
        errors.append(f"{where}: evidence {evidence!r} found {occurrences} times in {name}")
    if not name.endswith(".pdf") and evidence not in texts[name]:
        errors.append(f"{where}: evidence {evidence!r} is not an exact substring of {name}")


def verify_qa(qa_path: Path = QA_PATH, out_dir: Path = OUT_DIR,
              conversations_path: Path = CONVERSATIONS_PATH) -> collections.Counter:
    """Assert that every QA evidence string occurs exactly once in its file's extracted text.

    Comparison ignores whitespace, because PDF extraction inserts line breaks; Markdown and DOCX
    evidence must in addition be an exact substring.  Unanswerable questions (evidence null) have no
    file.  Every line names its split.  Returns the number of questions per kind.
    """
    texts = {name: extract_text(out_dir / name) for name in ALL_FILES}
    squashed = {name: _squash(text) for name, text in texts.items()}
    kinds: collections.Counter = collections.Counter()
    errors = []
    for line_no, line in enumerate(qa_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        item = json.loads(line)
        where = f"{qa_path.name}:{line_no}"
        if item.get("split") not in SPLITS:
            errors.append(f"{where}: split must be one of {SPLITS}")
        if item["evidence"] is None:
            kinds["unanswerable"] += 1
            continue
        name, evidence, kind = item["file"], item["evidence"], item["kind"]
        kinds[kind] += 1
        expected_lang = "zh" if kind in ("zh", "zh-about-en") else "en"
        if item["lang"] != expected_lang or kind not in ("zh", "en", "en-about-zh", "zh-about-en"):
            errors.append(f"{where}: inconsistent lang/kind {item['lang']!r}/{kind!r}")
        if (kind in ("zh", "en-about-zh")) != (name in CHINESE_FILES):
            errors.append(f"{where}: kind {kind!r} does not match the language of {name}")
        _check_evidence(where, name, evidence, texts, squashed, errors)
    if conversations_path.exists():
        for line_no, line in enumerate(conversations_path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            item = json.loads(line)
            where = f"{conversations_path.name}:{line_no}"
            kinds["conversation"] += 1
            if item.get("split") not in SPLITS or item.get("relation") not in ("follow-up", "unrelated"):
                errors.append(f"{where}: needs a split and a relation (follow-up or unrelated)")
            if len(item.get("turns", [])) < 2:
                errors.append(f"{where}: a conversation has at least two turns")
            if item["evidence"] is not None:
                _check_evidence(where, item["file"], item["evidence"], texts, squashed, errors)
            elif item["relation"] != "unrelated":
                errors.append(f"{where}: a follow-up must have evidence")
    assert not errors, "QA verification failed:\n" + "\n".join(errors)
    return kinds


# ---------------------------------------------------------------------------------------------

def build_all(out_dir: Path = OUT_DIR) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    build_handbook_pdf(out_dir / HANDBOOK_PDF)
    build_security_docx(out_dir / SECURITY_DOCX)
    write_markdown(out_dir / ONBOARDING_MD, ONBOARDING_TEXT)
    write_markdown(out_dir / REIMBURSEMENT_MD, REIMBURSEMENT_TEXT)
    build_remote_work_pdf(out_dir / REMOTE_PDF)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="after building, verify page counts and data/eval/sample_qa.jsonl")
    args = parser.parse_args(argv)

    build_all()
    for name in ALL_FILES:
        print(f"wrote {(OUT_DIR / name).relative_to(HERE.parent)}")
    if args.check:
        pages = check_page_counts()
        kinds = verify_qa()
        print("pages: " + ", ".join(f"{name}={count}" for name, count in pages.items()))
        print(f"QA ok: {sum(kinds.values())} questions ("
              + ", ".join(f"{kind}={count}" for kind, count in sorted(kinds.items())) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
