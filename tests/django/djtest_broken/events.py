"""An events module that exists but cannot be imported."""
from django_socketio.events import on_message

import djtest_module_that_does_not_exist  # noqa: F401


@on_message
def never(request, socket, context, message):
    pass
