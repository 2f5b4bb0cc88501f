"""The residents service: the committee's register of buildings, households, residents, staff, volunteers and zones."""
