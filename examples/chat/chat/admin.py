from django.contrib import admin

from .models import ChatRoom, ChatUser


@admin.register(ChatRoom)
class ChatRoomAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(ChatUser)
class ChatUserAdmin(admin.ModelAdmin):
    list_display = ["name", "room", "session"]
