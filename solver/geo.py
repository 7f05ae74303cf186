"""Distances and travel times: haversine on a 6371.0 km sphere times the detour factor."""

from __future__ import annotations

import math

import numpy as np

EARTH_RADIUS_KM = 6371.0


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km, vectorized over NumPy arrays (broadcasting)."""
    p1 = np.radians(lat1)
    p2 = np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def distance_km(lat1, lon1, lat2, lon2, detour_factor: float):
    """Road distance estimate in km: haversine × detour factor (vectorized)."""
    return haversine_km(lat1, lon1, lat2, lon2) * detour_factor


def point_distance_km(lat1: float, lon1: float, lat2: float, lon2: float, detour_factor: float) -> float:
    """Scalar road distance in km, in plain Python floats (same formula as `distance_km`)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2.0) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, max(0.0, a)))) * detour_factor


def travel_minutes(km, speed_kmh: float):
    """Travel time in minutes (a real number, not rounded) for a distance in km."""
    return km / speed_kmh * 60.0
