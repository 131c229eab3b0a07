"""The documented vocabularies of hazard records and alarm follow-ups.

Hazard categories are grouped by sector and, where the ministry's major-hazard criteria
(重大事故隐患判定标准) name a situation, carry that standard's wording; `general.*` serves
every sector. The list is yujing's own selection, not the standards' full text."""

from __future__ import annotations

# Standards the sector groups follow (for the README and the API's category listing).
STANDARDS = {
    "coal": "煤矿重大事故隐患判定标准 (应急管理部令第4号, 2020)",
    "chemicals": (
        "化工和危险化学品生产经营单位重大生产安全事故隐患判定标准 (安监总管三〔2017〕121号)"
    ),
    "metal_nonmetal": "金属非金属矿山重大事故隐患判定标准 (矿安〔2022〕88号)",
    "industry_trade": "工贸企业重大事故隐患判定标准 (应急管理部令第10号, 2023)",
}

CATEGORIES: dict[str, str] = {
    # coal mines
    "coal.gas_over_limit": "瓦斯超限作业",
    "coal.ventilation": "通风系统不完善、不可靠",
    "coal.monitoring": "安全监控系统不能正常运行 (传感器失效、断电功能失灵)",
    "coal.outburst": "煤与瓦斯突出矿井未采取防突措施",
    "coal.water": "水害防治措施不落实",
    "coal.halted_production": "停产整顿期间擅自生产 (电子封条报警)",
    "coal.electrical": "供电系统不可靠 (煤矿电气设备失爆)",
    # hazardous chemicals
    "chemicals.gas_detection": "可燃和有毒气体泄漏检测报警装置未按标准设置或不能正常使用",
    "chemicals.auto_control": "重点监管危险化工工艺装置未实现自动化控制或安全仪表系统未投用",
    "chemicals.major_hazard_monitoring": "一级、二级重大危险源未设置紧急切断或监测监控不能正常运行",
    "chemicals.storage": "危险化学品储存不符合规定 (超量、混存)",
    # metal and non-metal mines, tailings
    "tailings.beach_length": "尾矿库干滩长度小于设计最小干滩长度",
    "tailings.phreatic_line": "尾矿库浸润线埋深小于控制浸润线埋深",
    "tailings.monitoring": "尾矿库在线监测系统不能正常运行",
    # industry and trade (dust, metallurgy, aluminium casting)
    "dust.no_airlock": "干式除尘系统未规范采用泄爆、隔爆、惰化、抑爆措施或未采用锁气卸灰",
    "dust.spark_detection": "除尘系统未按规定设置火花探测消除装置",
    "dust.temperature": "除尘器灰斗温度监测报警不能正常运行",
    "metallurgy.molten_metal": "高温熔融金属吊运、冶炼区域安全设施不符合规定",
    "metallurgy.gas": "煤气区域未设置固定式一氧化碳监测报警装置或不能正常使用",
    "aluminium.casting": "铝加工 (深井铸造) 未设置紧急排放和安全联锁",
    # any sector
    "general.monitoring_device": "监测监控设备故障、失效或数据异常",
    "general.repeated_alarm": "同一监测点反复超限报警 (yujing 自动提出, 待核实)",
    "general.management": "安全管理制度、责任落实缺陷",
    "general.other": "其他",
}

# 超限报警追查: why an orange or red hazard alarm happened (the follow-up record's cause).
CAUSES: dict[str, str] = {
    "sensor_fault": "传感器故障",
    "real_emission": "真实超限 (泄漏、涌出)",
    "ventilation": "通风异常",
    "calibration": "标校、调试",
    "test": "测试",
    "other": "其他",
}
