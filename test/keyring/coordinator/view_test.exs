defmodule Keyring.Coordinator.ViewTest do
  use ExUnit.Case, async: true

  alias Keyring.Coordinator.{Presence, View}

  defp p(inc, status \\ :up, caps \\ []),
    do: %Presence{node_id: "id", node: :n@h, incarnation: inc, status: status, capabilities: caps}

  test "a new incarnation of a known node is a leave of the old one, then a join" do
    assert View.events(%{"id" => p(1)}, %{"id" => p(2)}) == [{:leave, p(1)}, {:join, p(2)}]
  end

  test "join, update, down, back up and removal" do
    assert View.events(%{}, %{"id" => p(1)}) == [{:join, p(1)}]

    assert View.events(%{"id" => p(1)}, %{"id" => p(1, :up, [:x])}) == [
             {:update, p(1, :up, [:x])}
           ]

    assert View.events(%{"id" => p(1)}, %{"id" => p(1, :down)}) == [{:down, p(1, :down)}]
    assert View.events(%{"id" => p(1, :down)}, %{"id" => p(1)}) == [{:join, p(1)}]
    assert View.events(%{"id" => p(1)}, %{}) == [{:leave, p(1)}]
    assert View.events(%{"id" => p(1)}, %{"id" => p(1)}) == []
  end

  test "a down mark holds only for the incarnation that went down" do
    assert View.status(p(1), {1, self(), 0}) == :down
    assert View.status(p(2), {1, self(), 0}) == :up
    assert View.status(p(2), nil) == :up
  end
end
