defmodule Keyring.Coordinator.View do
  @moduledoc false
  # Pure helpers for a node's local view of presence: which entries are down,
  # and which events a change of view produces.

  alias Keyring.Coordinator.Presence

  # A down mark only holds for the incarnation that went down.
  @spec status(Presence.t(), {pos_integer(), pid(), integer()} | nil) :: :up | :down
  def status(%Presence{incarnation: inc}, {inc, _pid, _since}), do: :down
  def status(_presence, _mark), do: :up

  # Events between two views (%{node_id => presence}), in emission order.
  @spec events(map(), map()) :: [{:join | :update | :down | :leave, Presence.t()}]
  def events(old, new) do
    changed =
      Enum.flat_map(new, fn {id, p} ->
        case Map.fetch(old, id) do
          :error -> [{:join, p}]
          {:ok, ^p} -> []
          {:ok, %{incarnation: i} = o} when i != p.incarnation -> [{:leave, o}, {:join, p}]
          {:ok, %{status: :up}} when p.status == :down -> [{:down, p}]
          {:ok, %{status: :down}} when p.status == :up -> [{:join, p}]
          {:ok, _} -> [{:update, p}]
        end
      end)

    removed = for {id, o} <- old, not Map.has_key?(new, id), do: {:leave, o}
    changed ++ removed
  end
end
