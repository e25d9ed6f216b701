class BoundaryError(Exception):
    pass


class WaypointError(Exception):
    def __init__(self, message, task):
        super(WaypointError, self).__init__("Error in task %s. %s" % (task.get_name(), message))


class NoWaypointsError(Exception):
    def __init__(self, message, task):
        super(NoWaypointsError, self).__init__("Error in task %s. %s" % (task.get_name(), message))


class DemoError(Exception):
    def __init__(self, message, task):
        super(DemoError, self).__init__("Error in task %s. %s" % (task.get_name(), message))


class InvalidActionError(Exception):
    pass


class TaskEnvironmentError(Exception):
    pass
