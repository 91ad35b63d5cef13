"""Marketing events: seminars, webinars and exhibitions with invitations, registration and attendance."""
