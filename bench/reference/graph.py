"""The chatbot graph of the comparison in `make bench ARGS=--reference`: OpenGPTs' chatbot as a
LangGraph graph (one node, `chatbot`), on ChatOpenAI pointed at the benchmark's mock upstream."""

from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph

model = ChatOpenAI(model="gpt-4o", streaming=True)


def chatbot(state: MessagesState):
    return {"messages": [model.invoke(state["messages"])]}


graph = StateGraph(MessagesState).add_node("chatbot", chatbot).add_edge(START, "chatbot").add_edge("chatbot", END).compile()
