"""What a Hong Kong Traditional Chinese catalogue must not say, for the console's and the kiosk's
zh-HK tests alike."""

from __future__ import annotations

# Simplified characters whose Traditional form differs, common in a console's words; none may stand
# in the Traditional catalogue (a mechanical slip, or a key copied from zh-CN and left so).
SIMPLIFIED_ONLY = frozenset("们这个为时来对发会过机设备线号码网络数据务录级关开门问题间让请认证电话页户启应后于终运维"
                            "报审计态检测视频点击长读钮显册签处删实现际试总状览隐")
# Mainland words where Hong Kong says another (信息 → 資訊, 登录 → 登入, ...), in either script.
MAINLAND_WORDS = ("信息", "登录", "登錄", "服务器", "服務器", "打印", "默认", "默認", "内存", "內存", "磁盘", "磁盤",
                  "数据库", "數據庫", "账户", "賬戶", "接口", "令牌", "创建", "創建", "添加",
                  "设置", "設置", "芯片", "字节", "字節", "模块", "模塊", "响应", "響應", "脱机", "脫機", "超时",
                  "超時", "加载", "加載", "刷新", "搜索")


def slips(catalogue: dict[str, str]) -> dict[str, list[str]]:
    """Each text that holds a Simplified-only character or a mainland word, with what it holds."""
    found = {}
    for key, text in catalogue.items():
        hits = sorted(set(text) & SIMPLIFIED_ONLY) + [w for w in MAINLAND_WORDS if w in text]
        if hits:
            found[key] = hits
    return found
