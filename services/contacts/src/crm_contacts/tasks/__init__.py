"""Tasks on a contact or deal, with due times, reminders and the scheduler that sends them."""
