"""Drip sequences: a trigger enrols a contact, then wait / send / branch steps run once each."""
