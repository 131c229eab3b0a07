"""The enterprise record (一企一档) as the API takes and gives it, with its checks: unified
social credit code (GB 32100-2015 check character, by python-stdnum), division code (GB/T
2260, from the shipped table), sectors from the vocabulary, WGS-84 location inside China,
contacts' phone numbers, and a state other than operating only with its date and document."""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from stdnum.cn import uscc as _uscc
from stdnum.exceptions import ValidationError

from yujing.levels import Level
from yujing.names import IDENTIFIER
from yujing.registry import divisions
from yujing.registry.sectors import SECTORS

State = Literal["operating", "halted", "closed"]
SupervisionClass = Literal["A", "B", "C", "D"]
PHONE = re.compile(r"^(1[3-9][0-9]{9}|0[1-9][0-9]{1,2}-?[0-9]{7,8}(-[0-9]{1,6})?|12350)$")
# WGS-84 box around China's territory: catches swapped or zero coordinates.
LON_RANGE, LAT_RANGE = (73.0, 136.0), (3.0, 54.0)


def check_uscc(value: str) -> str:
    try:
        return str(_uscc.validate(value))
    except ValidationError as exc:
        raise ValueError(
            f"{value!r} is not a valid unified social credit code (GB 32100-2015: 18 characters,"
            f" the last a check character): {exc}"
        ) from None


def check_division(code: str) -> str:
    if not divisions.CODE.fullmatch(code) or divisions.get(code) is None:
        raise ValueError(f"{code!r} is not a GB/T 2260 division code in yujing's table")
    return code


def check_sectors(values: list[str]) -> list[str]:
    unknown = [v for v in values if v not in SECTORS]
    if unknown:
        raise ValueError(f"unknown sectors {unknown}; one of {', '.join(SECTORS)}")
    return list(dict.fromkeys(values))


class Location(BaseModel):
    lon: float = Field(description="WGS-84 longitude, degrees east")
    lat: float = Field(description="WGS-84 latitude, degrees north")

    @model_validator(mode="after")
    def _in_china(self) -> Location:
        if not (
            LON_RANGE[0] <= self.lon <= LON_RANGE[1] and LAT_RANGE[0] <= self.lat <= LAT_RANGE[1]
        ):
            raise ValueError(
                f"({self.lon}, {self.lat}) is outside China (longitude {LON_RANGE},"
                f" latitude {LAT_RANGE}); are longitude and latitude swapped?"
            )
        return self


class Contact(BaseModel):
    role: Literal["principal", "safety_manager", "duty", "other"] = Field(
        description="主要负责人, 安全负责人, 值班, other"
    )
    name: str = Field(min_length=1, max_length=50)
    phone: str = Field(description="mobile (11 digits) or landline with area code")

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str) -> str:
        v = v.replace(" ", "")
        if not PHONE.fullmatch(v):
            raise ValueError(f"{v!r} is not a mainland mobile or landline number")
        return v


class Installation(BaseModel):
    """A major-hazard installation (重大危险源), graded 1 (一级, highest) to 4 (四级)."""

    id: str = Field(pattern=IDENTIFIER.pattern)
    name: str = Field(min_length=1, max_length=200)
    grade: int = Field(ge=1, le=4, description="1 = 一级 (highest) … 4 = 四级")
    devices: list[str] = Field(
        default_factory=list, description="devices that watch it (their `installation` tag)"
    )


class EnterpriseRecord(BaseModel):
    """What `PUT /enterprises/{id}` takes (the whole record)."""

    name: str = Field(min_length=1, max_length=200, description="Chinese registered name")
    uscc: str = Field(description="unified social credit code, GB 32100-2015")
    division: str = Field(description="GB/T 2260 code of the county (or city) it lies in")
    park: str | None = Field(
        default=None, pattern=IDENTIFIER.pattern, description="chemical park id"
    )
    sectors: list[str] = Field(min_length=1, description="from the sector vocabulary; first = main")
    supervision_class: SupervisionClass = Field(description="分类分级 A/B/C/D")
    location: Location | None = None
    address: str = Field(default="", max_length=300)
    contacts: list[Contact] = Field(default_factory=list, max_length=50)
    state: State = "operating"
    state_since: date | None = None
    state_document: str = Field(default="", max_length=300, description="文书 that declared it")
    installations: list[Installation] = Field(default_factory=list, max_length=500)

    _uscc = field_validator("uscc")(classmethod(lambda cls, v: check_uscc(v)))
    _division = field_validator("division")(classmethod(lambda cls, v: check_division(v)))
    _sectors = field_validator("sectors")(classmethod(lambda cls, v: check_sectors(v)))

    @model_validator(mode="after")
    def _state_declared(self) -> EnterpriseRecord:
        if self.state != "operating" and (self.state_since is None or not self.state_document):
            raise ValueError(
                f"state {self.state!r} needs state_since (the date) and state_document"
                " (the document that declared it)"
            )
        ids = [i.id for i in self.installations]
        if len(ids) != len(set(ids)):
            raise ValueError("installation ids must be unique")
        return self


class EnterprisePatch(BaseModel):
    """`PATCH /enterprises/{id}`: any field of the record; the rest is kept."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    uscc: str | None = None
    division: str | None = None
    park: str | None = Field(default=None, pattern=IDENTIFIER.pattern)
    sectors: list[str] | None = Field(default=None, min_length=1)
    supervision_class: SupervisionClass | None = None
    location: Location | None = None
    address: str | None = Field(default=None, max_length=300)
    contacts: list[Contact] | None = Field(default=None, max_length=50)
    state: State | None = None
    state_since: date | None = None
    state_document: str | None = Field(default=None, max_length=300)
    installations: list[Installation] | None = Field(default=None, max_length=500)


class RiskGradeBody(BaseModel):
    grade: Literal["red", "orange", "yellow", "blue"] | None = Field(
        description="standing risk grade 红橙黄蓝; null clears it"
    )
    reason: str = Field(min_length=1, max_length=2000)


class DivisionPublic(BaseModel):
    code: str
    name: str
    level: str
    full_name: str


class EnterprisePublic(EnterpriseRecord):
    id: str
    division_name: str
    province: str | None
    city: str | None
    county: str | None
    risk_grade: str | None
    risk_grade_at: str | None
    risk_grade_by: str | None
    risk_grade_reason: str | None
    created_at: str
    updated_at: str
    updated_by: str


def division_parts(code: str) -> dict[str, str | None]:
    by_level = {d.level: d.code for d in divisions.chain(code)}
    return {k: by_level.get(k) for k in ("province", "city", "county")}


def public(row: Any, installation_devices: dict[str, list[str]]) -> EnterprisePublic:
    loc = None if row["lon"] is None else Location.model_construct(lon=row["lon"], lat=row["lat"])
    grade = row["risk_grade"]
    parts = division_parts(row["division"])
    return EnterprisePublic.model_construct(
        id=row["id"], name=row["name"], uscc=row["uscc"], division=row["division"],
        division_name=divisions.full_name(row["division"]), province=parts["province"],
        city=parts["city"], county=parts["county"],
        park=row["park"], sectors=list(row["sectors"]),
        supervision_class=row["supervision_class"], location=loc, address=row["address"],
        contacts=[Contact.model_construct(**c) for c in row["contacts"]],
        state=row["state"], state_since=row["state_since"], state_document=row["state_document"],
        installations=[
            Installation.model_construct(**{**i, "devices": installation_devices.get(i["id"], [])})
            for i in row["installations"]
        ],
        risk_grade=None if grade is None else Level(grade).word,
        risk_grade_at=row["risk_grade_at"].isoformat() if row["risk_grade_at"] else None,
        risk_grade_by=row["risk_grade_by"], risk_grade_reason=row["risk_grade_reason"],
        created_at=row["created_at"].isoformat(), updated_at=row["updated_at"].isoformat(),
        updated_by=row["updated_by"],
    )  # fmt: skip
