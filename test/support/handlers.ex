defmodule Keyring.Test.Handlers do
  @moduledoc false
  # Task handlers registered on peers in cluster tests.
  def echo(task), do: {node(), task}
  def slow(ms), do: Process.sleep(ms) && {:slept, node()}
  def boom(_task), do: raise("boom")
end

defmodule Keyring.Test.PickLast do
  @moduledoc false
  @behaviour Keyring.Coordinator.RoutingStrategy
  @impl true
  def pick(candidates, _cap, _task), do: Enum.max_by(candidates, & &1.node)
end
