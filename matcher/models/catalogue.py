"""Skills and service categories: data an administrator can edit."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import db

category_skills = Table(
    "category_skills",
    db.metadata,
    Column("category_id", ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True),
    Column("skill_id", ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True),
)


class Skill(db.Model):
    """A skill or qualification; `needs_certificate` means it only counts with a valid certificate."""

    __tablename__ = "skills"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_zh: Mapped[str] = mapped_column(String(60))
    name_en: Mapped[str] = mapped_column(String(60))
    needs_certificate: Mapped[bool] = mapped_column(default=False)


class Category(db.Model):
    """A service category with the defaults a new demand of that kind starts from."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_zh: Mapped[str] = mapped_column(String(60))
    name_en: Mapped[str] = mapped_column(String(60))
    default_minutes: Mapped[int] = mapped_column(default=60)
    default_people: Mapped[int] = mapped_column(default=1)
    default_min_people: Mapped[int] = mapped_column(default=1)
    # Any one of the required skills is enough (e.g. health: medical OR first aid).
    skills_any: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)

    skills: Mapped[list[Skill]] = relationship(secondary=category_skills, order_by="Skill.code")
