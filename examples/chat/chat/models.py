"""Rooms, and who is in them right now (one row per connected chatter)."""
from django.db import models
from django.urls import reverse
from django.utils.text import slugify


RESERVED_SLUGS = {"create", "system_message", "admin", "static"}  # other URLs of the site


class ChatRoom(models.Model):
    name = models.CharField(max_length=40, unique=True)
    slug = models.SlugField(max_length=50, unique=True, blank=True, allow_unicode=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = self._free_slug()
        super().save(*args, **kwargs)

    def _free_slug(self):
        base = slugify(self.name, allow_unicode=True)[:40] or "room"
        slug, n = base, 1
        while slug in RESERVED_SLUGS or ChatRoom.objects.filter(slug=slug).exists():
            n += 1
            slug = f"{base}-{n}"
        return slug

    def get_absolute_url(self):
        return reverse("chat:room", args=[self.slug])

    @property
    def channel(self):
        """The Socket.IO channel of the room's chatters."""
        return f"room-{self.pk}"


class ChatUser(models.Model):
    name = models.CharField(max_length=20)
    session = models.CharField(max_length=32, help_text="Socket.IO session id")
    room = models.ForeignKey(ChatRoom, related_name="users", on_delete=models.CASCADE)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["room", "name"], name="one_name_per_room")]

    def __str__(self):
        return self.name
