"""The overview as a file: CSV (UTF-8 with a byte-order mark, so that Excel in a Chinese
locale opens it right) and XLSX (openpyxl), with Chinese headers."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook

COLUMNS: tuple[tuple[str, str], ...] = (
    ("enterprise", "企业编号"), ("name", "企业名称"), ("division", "行政区划代码"),
    ("division_name", "行政区划"), ("sectors", "行业"), ("state", "状态"),
    ("colour", "当前风险"), ("risk_grade", "风险等级"), ("red", "红色报警"),
    ("orange", "橙色报警"), ("yellow", "黄色报警"), ("blue", "蓝色报警"),
    ("health_active", "设备故障报警"), ("devices", "设备数"), ("online", "在线数"),
    ("online_rate", "在线率"), ("connection_rate", "入网率"),
)  # fmt: skip
_LEVELS = ("red", "orange", "yellow", "blue")
_WORDS = {"red": "红", "orange": "橙", "yellow": "黄", "blue": "蓝", None: "",
          "operating": "正常生产", "halted": "停产", "closed": "关闭"}  # fmt: skip


def _cells(item: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for key, _ in COLUMNS:
        if key in _LEVELS:
            out.append(item["active"][key])
        elif key == "sectors":
            out.append("、".join(item["sectors"]))
        elif key in ("colour", "risk_grade", "state"):
            out.append(_WORDS.get(item[key], item[key]))
        else:
            out.append(item[key])
    return out


def to_csv(items: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([title for _, title in COLUMNS])
    writer.writerows(_cells(i) for i in items)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(items: list[dict[str, Any]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("一张表")
    sheet.append([title for _, title in COLUMNS])
    for item in items:
        sheet.append(_cells(item))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
